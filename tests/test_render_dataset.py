import json
import os

import numpy as np
import pytest

from paperecg.layouts import STANDARD_LEADS
from paperecg.records.io import load_header_info, load_signal, write_record
from paperecg.render.dataset import RenderedPageDataset, collate_pages, find_eik_pages
from paperecg.render.eik import load_eik_page
from paperecg.tools import contact_sheet, render_folder
from paperecg.records.synthetic import synthetic_ecg
from paperecg.score.evaluate import snr_db


@pytest.fixture(autouse=True)
def _one_thread():
    import cv2

    cv2.setNumThreads(1)  # the CPU is shared (torch threads: conftest)


@pytest.fixture()
def records(tmp_path):
    folder = tmp_path / "records"
    names = [n.upper() for n in STANDARD_LEADS]  # PTB-XL spelling
    paths = []
    for i, fs in enumerate((250.0, 500.0)):
        paths.append(write_record(str(folder / "sub"), f"{i:05d}_hr", synthetic_ecg(fs, seed=i), fs, names,
                                  comments=["Age: 50", "Labels: NORM"]))
    return folder, paths


def test_dataset_renders_deterministic_pages(records):
    folder, paths = records
    ds = RenderedPageDataset(paths, pages_per_record=2, augment=True, seed=1, layouts=["3x4", "6x2"], dpi=60)
    assert len(ds) == 4
    a, b = ds[1], ds[1]
    assert np.array_equal(a.image, b.image) and a.layout in ("3x4", "6x2")
    assert a.fs_hz == 250.0 and ds[2].fs_hz == 500.0
    ds.set_epoch(1)
    assert not np.array_equal(ds[1].image, a.image)
    # a folder works too, and a DataLoader batches pages as lists
    from torch.utils.data import DataLoader

    batch = next(iter(DataLoader(RenderedPageDataset(str(folder), augment=False, dpi=60), batch_size=2,
                                 collate_fn=collate_pages)))
    assert len(batch) == 2 and all(p.trace_mask.any() for p in batch)
    with pytest.raises(ValueError):
        RenderedPageDataset(paths, layouts=["5x5"])


def test_render_folder_writes_every_label_and_resumes(records, tmp_path, capsys):
    folder, paths = records
    out = tmp_path / "pages"
    argv = ["--records", str(folder), "--out", str(out), "--pages-per-record", "2", "--dpi", "60",
            "--workers", "1", "--write-records", "--seed", "3"]
    assert render_folder.main(argv) == 0
    pairs = find_eik_pages(str(out))
    assert len(pairs) == 4
    for img, js in pairs:
        name = os.path.splitext(os.path.basename(img))[0]
        assert os.path.isfile(out / "labels" / f"{name}.txt")
        assert os.path.isfile(out / "masks" / f"{name}.png") and os.path.isfile(out / "masks" / f"{name}_leads.png")
        page = load_eik_page(img, js)
        meta = json.load(open(js))
        assert len(page.leads) == len(meta["leads"]) and page.trace_mask.any()
        # the written reference is NaN exactly where the page draws nothing, and the page's own
        # plotted pixels read back to it (un-augmented pages only; augmented ones moved)
        rec = os.path.join(os.path.dirname(img), name)
        ref, _ = load_signal(rec)
        info = load_header_info(rec)
        assert info.image_files == [os.path.basename(img)] and info.labels == ["NORM"]
        drawn = np.zeros(ref.shape, bool)
        for t in page.leads:
            drawn[t.start_sample:t.end_sample, STANDARD_LEADS.index(t.name)] = True
        assert np.array_equal(np.isfinite(ref), drawn)
    capsys.readouterr()
    assert render_folder.main(argv) == 0  # resume: nothing left to do
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rendered"] == 0

    clean = tmp_path / "clean"
    assert render_folder.main(["--records", str(folder), "--out", str(clean), "--no-augment", "--dpi", "60",
                               "--workers", "1", "--write-records"]) == 0
    for img, js in find_eik_pages(str(clean)):
        page = load_eik_page(img, js)
        rec = os.path.splitext(img)[0]
        ref, _ = load_signal(rec)
        info = load_header_info(rec)
        readback, _ = page.signal_readback(info.lead_names)
        assert np.array_equal(np.isfinite(readback), np.isfinite(ref))
        snrs = [snr_db(ref[:, j], readback[:, j], info.fs_hz, align=False) for j in range(ref.shape[1])]
        assert min(snrs) > 40  # JSON keeps 0.01 px; WFDB keeps 1 uV


def test_contact_sheet_writes_a_png(records, tmp_path):
    folder, _ = records
    out = tmp_path / "sheet.png"
    assert contact_sheet.main(["--records", str(folder), "--n", "2", "--out", str(out), "--tile-width", "200"]) == 0
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 400 and im.size[1] > 100
