"""Header parsing (incl. hidden headers), WFDB round trips, output sanitising and image loading."""
import numpy as np
import pytest

from paperecg.records import header as H
from paperecg.records.images import load_page
from paperecg.records.io import load_signal, sanitize_signal, save_outputs, write_record
from paperecg.records.labels import format_labels, order_labels

HIDDEN = (
    "00042_hr 12 500 5000\n"
    + "".join(f"00042_hr.dat 16 1000.0(0)/mV 16 0    {n}\n" for n in
              ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    + "# Image: 00042_hr-0.png, 00042_hr-1.jpg\n"
)


def test_hidden_header_fields():
    assert H.get_num_signals(HIDDEN) == 12
    assert H.get_sampling_frequency(HIDDEN) == 500.0
    assert H.get_num_samples(HIDDEN) == 5000
    assert H.get_signal_names(HIDDEN)[3] == "AVR"
    assert H.get_adc_gains(HIDDEN) == [1000.0] * 12
    assert H.get_baselines(HIDDEN) == [0] * 12
    assert H.get_signal_units(HIDDEN) == ["mV"] * 12
    assert H.get_initial_values(HIDDEN) == [None] * 12  # blank fields read as None, no crash
    assert H.get_checksums(HIDDEN) == [None] * 12
    assert H.get_image_files_from_header(HIDDEN) == ["00042_hr-0.png", "00042_hr-1.jpg"]
    assert H.get_labels_from_header(HIDDEN) is None
    info = H.parse_header(HIDDEN)
    assert (info.fs_hz, info.num_samples, info.num_leads) == (500.0, 5000, 12)
    assert info.age is None and info.sex is None


def test_header_variants_and_odd_values():
    text = ("r 2 250 2500\nr.dat 16 200/uV 16 0 1 2 0 i\nr.dat 16 1000.0(5)/mV 16 0 1 2 0 ii\n"
            "#Image: x.png\n# Labels: \n# Age: Unknown\n# Sex: Male\n")
    assert H.get_image_files_from_header(text) == ["x.png"]  # early '#Image:' variant accepted
    assert H.get_labels_from_header(text) == []  # empty labels line: present but empty
    assert H.get_baselines(text) == [0, 5]  # no '(b)' -> ADC zero
    assert H.get_signal_units(text) == ["uV", "mV"]
    info = H.parse_header(text)
    assert info.age is None and info.sex == "Male"
    assert info.lead_names == ["i", "ii"]


def test_broken_record_line_falls_back_to_defaults():
    info = H.parse_header("r 1\nr.dat 16 1000/mV 16 0 0 0 0 I\n")
    assert info.fs_hz == 500.0 and info.num_samples == 5000 and info.lead_names == ["I"]


def test_labels_are_ordered_like_the_challenge():
    assert order_labels(["BRADY", "NORM", "Old MI", "NORM"]) == ["NORM", "Old MI", "BRADY"]
    assert format_labels(["CD", "AFIB/AFL"]) == "CD, AFIB/AFL"


@pytest.mark.parametrize("fs_hz", [100.0, 250.0, 500.0])
def test_save_load_round_trip_with_nan(tmp_path, fs_hz):
    n = int(fs_hz * 10)
    names = ["I", "II", "AVR"]
    rng = np.random.default_rng(1)
    sig = np.round(rng.normal(0, 0.5, (n, 3)), 3)
    src = write_record(tmp_path / "in", "rec", sig, fs_hz, names, ["Image: rec-0.png"])
    est = sig.copy()
    est[: n // 2, 1] = np.nan
    header = open(src + ".hea").read()
    out = str(tmp_path / "out" / "sub" / "rec")
    save_outputs(out, header, est, ["NORM", "CD"])
    back, fields = load_signal(out)
    assert back.shape == (n, 3) and fields["fs"] == fs_hz
    assert np.isnan(back[: n // 2, 1]).all()
    np.testing.assert_allclose(back[n // 2:], est[n // 2:], atol=6e-4)
    written = open(out + ".hea").read()
    assert "# Image: rec-0.png" in written  # comment lines survive the signal write
    assert written.rstrip().endswith("# Labels: NORM, CD")


def test_sanitize_makes_every_bad_output_writable(tmp_path):
    n, L = 1000, 12
    bad = np.zeros((n, L))
    bad[0, 0], bad[1, 1], bad[2, 2] = np.inf, -np.inf, 1e6
    out = sanitize_signal(bad, n, L, [1000.0] * L)
    assert out.dtype == np.float64 and out.shape == (n, L)
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1]) and out[2, 2] <= 32.767
    assert sanitize_signal(np.zeros((n, L), dtype=np.int16), n, L).dtype == np.float64
    assert np.isnan(sanitize_signal(np.zeros(n), n, L)).all()  # 1-D for 12 leads -> all NaN
    assert np.isnan(sanitize_signal(np.zeros((n, 5)), n, L)).all()  # wrong column count
    assert sanitize_signal(np.ones((n + 7, L)), n, L).shape == (n, L)
    assert np.isnan(sanitize_signal(None, n, L)).all()
    assert np.isnan(sanitize_signal([["a"]], n, L)).all()
    # and the save step accepts the result at a small gain too
    src = write_record(tmp_path / "in", "g", np.zeros((n, L)), 100.0, [f"L{i}" for i in range(L)], adc_gain=200.0)
    save_outputs(str(tmp_path / "o" / "g"), open(src + ".hea").read(),
                 sanitize_signal(np.full((n, L), 500.0), n, L, [200.0] * L), None)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "1", "LA", "CMYK", "F"])
def test_images_of_every_mode_become_rgb(tmp_path, mode):
    from PIL import Image

    arr = (np.arange(40 * 30) % 256).reshape(30, 40).astype(np.uint8)
    im = Image.fromarray(arr).convert(mode) if mode not in ("I;16", "F") else \
        Image.fromarray((arr.astype(np.uint16) * 200) if mode == "I;16" else arr.astype(np.float32) / 3)
    ext = ".tif" if mode in ("I;16", "F", "CMYK") else ".png"
    path = str(tmp_path / f"im{ext}")
    im.save(path)
    page = load_page(path)
    assert page.rgb.dtype == np.uint8 and page.rgb.shape == (30, 40, 3)


def test_unusable_images_raise_clear_errors(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for path, words in [(tmp_path / "missing.png", "not found"), (empty, "empty"), (corrupt, "unreadable")]:
        with pytest.raises(ValueError, match=words):
            load_page(str(path))


def test_seeded_order_is_a_reproducible_permutation():
    from paperecg.records.ptbxl import seeded_order

    records = [f"r{k:03d}" for k in range(50)]
    a, b = seeded_order(records, 0), seeded_order(records, 0)
    assert a == b and sorted(a) == records and a != records
    assert seeded_order(records, 1) != a
