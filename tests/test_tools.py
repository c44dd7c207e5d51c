"""Data tools on temporary folders: PTB-XL preparation, image lines, hidden view; inputs left untouched."""
import os

from conftest import make_record
from test_harness import png, snapshot

from paperecg.records.header import get_labels_from_header, parse_header
from paperecg.records.io import find_records, load_header
from paperecg.tools import add_image_lines, hidden_view, prepare_ptbxl

STATEMENTS = """,description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass
NORM,normal ECG,1.0,,,NORM,NORM
IMI,inferior myocardial infarction,1.0,,,MI,IMI
LAFB,left anterior fascicular block,1.0,,,CD,LAFB
NDT,non-diagnostic T abnormalities,1.0,1.0,,STTC,STTC
PVC,ventricular premature complex,,1.0,,,
SR,sinus rhythm,,,1.0,,
AFLT,atrial flutter,,,1.0,,
SBRAD,sinus bradycardia,,,1.0,,
LVOLT,low QRS voltages,,1.0,,,
"""
DATABASE = """ecg_id,patient_id,age,sex,height,weight,scp_codes,strat_fold,filename_lr,filename_hr
1,1.0,56.0,1,,63.0,"{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}",3,records100/00000/00001_lr,records500/00000/00001_hr
2,2.0,300.0,0,180.0,,"{'IMI': 15.0, 'PVC': 100.0, 'AFLT': 0.0}",9,records100/00000/00002_lr,records500/00000/00002_hr
3,3.0,,,,,"{'SBRAD': 0.0, 'LAFB': 50.0, 'NDT': 100.0}",1,records100/00000/00003_lr,records500/00000/00003_hr
4,4.0,40.0,0,,,"{'LVOLT': 100.0}",2,records100/00000/00004_lr,records500/00000/00004_hr
"""


def raw_ptbxl(tmp_path):
    raw = tmp_path / "raw" / "records100" / "00000"
    for i in range(1, 5):
        make_record(raw, f"{i:05d}_lr", labels=None, seed=i)
        text = "\n".join(l for l in load_header(str(raw / f"{i:05d}_lr")).split("\n") if not l.startswith("#"))
        (raw / f"{i:05d}_lr.hea").write_text(text)
    (tmp_path / "scp.csv").write_text(STATEMENTS)
    (tmp_path / "db.csv").write_text(DATABASE)
    return tmp_path / "raw"


def test_prepare_ptbxl_writes_challenge_labels_and_demographics(tmp_path):
    raw = raw_ptbxl(tmp_path)
    before = snapshot(raw)
    out = tmp_path / "out"
    assert prepare_ptbxl.main(["-i", str(raw), "-d", str(tmp_path / "db.csv"), "-s", str(tmp_path / "scp.csv"),
                               "-o", str(out), "-q"]) == 0
    assert snapshot(raw) == before
    rec = lambda i: str(out / "records100" / "00000" / f"{i:05d}_lr")  # noqa: E731
    assert get_labels_from_header(load_header(rec(1))) == ["NORM"]
    assert get_labels_from_header(load_header(rec(2))) == ["Old MI", "PVC", "AFIB/AFL"]
    assert get_labels_from_header(load_header(rec(3))) == ["STTC", "CD", "BRADY"]
    assert get_labels_from_header(load_header(rec(4))) == []  # no class applies: empty line, still present
    h2 = load_header(rec(2))
    assert "# Age: 90\n" in h2 and "# Sex: Male\n" in h2 and "# Height: 180\n" in h2 and "# Weight: Unknown\n" in h2
    assert "# Sex: Unknown" in load_header(rec(3))
    assert os.path.isfile(rec(1) + ".dat")  # signal copied beside the new header
    assert parse_header(load_header(rec(1))).num_samples == 1000


def test_prepare_ptbxl_acute_mi_from_ptbxl_plus(tmp_path):
    raw = raw_ptbxl(tmp_path)
    (tmp_path / "sl.csv").write_text('ecg_id,statements\n2,"[\'ACUTEIMI\', \'SR\']"\n1,"[\'SR\']"\n')
    (tmp_path / "map.csv").write_text("StatementNumber,Acronym,SNOMED\n821,ACUTEIMI,1\n100,SR,2\n")
    prepare_ptbxl.main(["-i", str(raw), "-d", str(tmp_path / "db.csv"), "-s", str(tmp_path / "scp.csv"),
                        "--in-place", "-q", "--sl-statements", str(tmp_path / "sl.csv"),
                        "--sl-mapping", str(tmp_path / "map.csv")])
    labels = get_labels_from_header(load_header(str(raw / "records100" / "00000" / "00002_lr")))
    assert labels == ["Acute MI", "PVC", "AFIB/AFL"]


def test_add_image_lines_copies_and_finds_images(tmp_path):
    data = tmp_path / "data"
    make_record(data, "00001_lr")
    make_record(data, "00002_lr")
    png(data / "00001_lr-0.png")
    png(data / "00001_lr-1.jpg")
    png(data / "00001_lr_other.png")  # another record's name: not ours
    before = snapshot(data)
    out = tmp_path / "out"
    assert add_image_lines.main(["-i", str(data), "-o", str(out)]) == 0
    assert snapshot(data) == before
    assert parse_header(load_header(str(out / "00001_lr"))).image_files == ["00001_lr-0.png", "00001_lr-1.jpg"]
    assert parse_header(load_header(str(out / "00002_lr"))).image_files == []
    add_image_lines.add_image_lines(str(out))  # idempotent: the line is replaced, not repeated
    assert load_header(str(out / "00001_lr")).count("# Image:") == 1


def test_hidden_view_strips_everything_inference_must_not_see(tmp_path):
    data = tmp_path / "data"
    make_record(data / "a", "00001_lr", images=("00001_lr-0.png",), labels=("CD",))
    png(data / "a" / "00001_lr-0.png")
    before = snapshot(data)
    hidden = tmp_path / "hidden"
    assert hidden_view.main(["-i", str(data), "-o", str(hidden)]) == 0
    assert snapshot(data) == before
    assert find_records(hidden) == ["a/00001_lr"]
    assert sorted(os.listdir(hidden / "a")) == ["00001_lr-0.png", "00001_lr.hea"]
    text = load_header(str(hidden / "a" / "00001_lr"))
    lines = text.strip().split("\n")
    assert lines[0] == "00001_lr 12 100 1000"
    assert lines[1].endswith(" 16 0    I")  # init value, checksum, block size blanked
    assert lines[-1] == "# Image: 00001_lr-0.png" and "Labels" not in text and "Age" not in text
    info = parse_header(text)
    assert info.num_samples == 1000 and info.lead_names[0] == "I"
