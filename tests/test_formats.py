"""tc3d.datasets.formats over small trees laid out, line for line, the way the data sets ship."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tc3d.datasets.annotations import (
    AnomalyAnnotation,
    anomaly_binary,
    find_annotation_file,
    read_temporal_annotations,
)
from tc3d.datasets.formats import (
    FORMATS,
    DatasetFormatError,
    VideoItem,
    detect_format,
    load_dataset,
)

# The first 38 lines of UCF101's classInd.txt: 37 is the HandstandPushups of the case quirk.
UCF_CLASS_NAMES = (
    "ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch "
    "Basketball BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles "
    "BodyWeightSquats Bowling BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth "
    "CleanAndJerk CliffDiving CricketBowling CricketShot CuttingInKitchen Diving Drumming "
    "Fencing FieldHockeyPenalty FloorGymnastics FrisbeeCatch FrontCrawl GolfSwing Haircut "
    "Hammering HammerThrow HandstandPushups HandstandWalking"
)
UCF_CLASSES = UCF_CLASS_NAMES.split()


def touch(path: Path) -> Path:
    """A stand-in video: this module never decodes, so a few bytes are enough."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypisom")
    return path


def write(path: Path, lines: list[str], eol: str = "\n", bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(s + eol for s in lines).encode())
    return path


def error(**kwargs) -> str:
    """The message load_dataset raises; it must be a single line."""
    with pytest.raises(DatasetFormatError) as info:
        load_dataset(**kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# ---------------------------------------------------------------- ucf101


def make_ucf(tmp: Path, split_dir: str = "ucfTrainTestlist", videos: str = "") -> Path:
    """Split files as in UCF101TrainTestSplits-RecognitionTask.zip: CRLF, a BOM, a blank line,
    trailing spaces, and list paths spelling the class folder ``HandStandPushups``."""
    root = tmp / "UCF101"
    splits = root / split_dir
    write(splits / "classInd.txt", [f"{i} {c}" for i, c in enumerate(UCF_CLASSES, 1)], "\r\n", True)
    train = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi 1",
        "Archery/v_Archery_g08_c01.avi 3 ",
        "",
        "HandStandPushups/v_HandStandPushups_g08_c01.avi 37",
    ]
    write(splits / "trainlist01.txt", train, "\r\n")
    test = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandStandPushups/v_HandStandPushups_g01_c01.avi",
    ]
    write(splits / "testlist01.txt", test, "\r\n")
    vids = root / videos
    for rel in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "Archery/v_Archery_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
    ):
        touch(vids / rel)
    return root


@pytest.mark.parametrize("split_dir", ["splits", "ucfTrainTestlist"])
@pytest.mark.parametrize("videos", ["", "videos"])
def test_ucf101_reads_real_split_files(tmp_path: Path, split_dir: str, videos: str):
    root = make_ucf(tmp_path, split_dir, videos)
    assert detect_format(root) == "ucf101"
    data = load_dataset(str(root))
    vids = root.resolve() / videos
    assert data.format == "ucf101"
    assert data.root == root.resolve()
    assert data.classes == UCF_CLASSES and data.classes[36] == "HandstandPushups"
    assert data.train == [
        VideoItem(vids / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        VideoItem(vids / "Archery/v_Archery_g08_c01.avi", 2),
        VideoItem(vids / "HandstandPushups/v_HandStandPushups_g08_c01.avi", 36),
    ]
    assert data.test == [
        VideoItem(vids / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),
        VideoItem(vids / "HandstandPushups/v_HandStandPushups_g01_c01.avi", 36),
    ]
    assert data.missing == [vids / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi"]
    assert (data.listed_train, data.listed_test) == (4, 2)
    assert all(item.path.is_absolute() and item.num_frames is None for item in data.train)


def test_ucf101_label_disagreeing_with_folder_trusts_folder_and_warns_once(tmp_path, caplog):
    root = make_ucf(tmp_path)
    write(
        root / "ucfTrainTestlist/trainlist01.txt",
        ["Archery/v_Archery_g08_c01.avi 2", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 5"],
        "\r\n",
    )
    with caplog.at_level(logging.WARNING, logger="tc3d.datasets.formats"):
        data = load_dataset(root)
    assert [item.label for item in data.train] == [2, 0]
    disagree = [r for r in caplog.records if "disagree" in r.getMessage()]
    assert len(disagree) == 1 and "2 labels" in disagree[0].getMessage()


def test_ucf101_splits_dir_elsewhere(tmp_path: Path):
    root = make_ucf(tmp_path, split_dir="../lists")  # split files outside ROOT
    assert detect_format(root) == "folder"  # ROOT alone is just class folders of videos
    data = load_dataset(root, splits_dir=tmp_path / "lists")
    assert data.format == "ucf101"
    assert (len(data.train), len(data.test), data.listed_train) == (3, 2, 4)


def test_ucf101_other_split_and_case_free_file_names(tmp_path: Path):
    root = make_ucf(tmp_path)
    splits = root / "ucfTrainTestlist"
    write(splits / "trainlist02.txt", ["archery/V_ARCHERY_G08_C01.AVI 3"], "\r\n")
    write(splits / "testlist02.txt", ["HandstandPushups/v_HandStandPushups_g01_c01.avi"], "\r\n")
    data = load_dataset(root, split=2)
    root = root.resolve()
    assert data.train == [VideoItem(root / "Archery/v_Archery_g08_c01.avi", 2)]
    assert data.test == [VideoItem(root / "HandstandPushups/v_HandStandPushups_g01_c01.avi", 36)]


def test_ucf101_errors(tmp_path: Path):
    root = make_ucf(tmp_path)
    splits = root / "ucfTrainTestlist"
    for split in (2, 4):
        assert error(root=root, split=split) == (
            f"UCF101 split {split} does not exist: no trainlist0{split}.txt or "
            f"testlist0{split}.txt in {splits}"
        )
    write(splits / "trainlist02.txt", ["Archery/v_Archery_g08_c01.avi 3"])
    assert error(root=root, split=2) == f"UCF101 split file not found: {splits / 'testlist02.txt'}"
    write(splits / "trainlist01.txt", ["v_Archery_g08_c01.avi 3"])
    assert error(root=root).startswith(f"{splits / 'trainlist01.txt'}:1: expected 'Class/video")
    write(splits / "trainlist01.txt", ["", "Juggling/v_Juggling_g01_c01.avi 1"])
    assert error(root=root) == (
        f"{splits / 'trainlist01.txt'}:2: class 'Juggling' is not in classInd.txt"
    )
    write(splits / "trainlist01.txt", ["\r\n"])
    assert error(root=root) == f"empty split: {splits / 'trainlist01.txt'} lists no videos"
    write(splits / "classInd.txt", ["1 ApplyEyeMakeup", "2 Archery", "three Biking"], "\r\n")
    assert error(root=root).startswith(f"{splits / 'classInd.txt'}:3: expected '<index> <Class>'")
    assert error(root=root, format="ucf101", splits_dir=tmp_path) == (
        f"split files not found: expected classInd.txt in {tmp_path}"
    )


# ---------------------------------------------------------------- hmdb51

# (class, video, id) in the order of the real <class>_test_split1.txt files.
HMDB_LINES = [
    ("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 1),
    ("brush_hair", "Aussie_Girl's_hair_&_make-up_brush_hair_h_cm_np1_fr_goo_0.avi", 2),
    ("brush_hair", "Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi", 0),
    ("cartwheel", "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi", 1),
    ("cartwheel", "Cartwheel_@_the_park;_take_2_cartwheel_f_cm_np1_ri_med_0.avi", 2),
    ("cartwheel", "Lost_clip_cartwheel_f_cm_np1_ri_med_1.avi", 1),
    ("ride_bike", "#122_Cleaning_Up_The_Beach_ride_bike_f_cm_np1_ba_bad_0.avi", 1),
    ("ride_bike", "Bikes_&_Boards_ride_bike_f_cm_np1_fr_med_1.avi", 2),
]


def make_hmdb(tmp: Path, split_dir: str = "testTrainMulti_7030_splits", videos: str = "") -> Path:
    """HMDB51 split lines end with a space after the id; names hold # ! & ( ) ' ; @."""
    root = tmp / "hmdb51"
    for cls in ("ride_bike", "brush_hair", "cartwheel"):
        lines = [f"{v} {i} " for c, v, i in HMDB_LINES if c == cls]
        write(root / split_dir / f"{cls}_test_split1.txt", lines)
    for cls, video, _ in HMDB_LINES:
        if not video.startswith("Lost"):
            touch(root / videos / cls / video)
    return root


@pytest.mark.parametrize("split_dir", ["splits", "testTrainMulti_7030_splits"])
@pytest.mark.parametrize("videos", ["", "videos"])
def test_hmdb51_reads_real_split_files(tmp_path: Path, split_dir: str, videos: str):
    root = make_hmdb(tmp_path, split_dir, videos)
    assert detect_format(root) == "hmdb51"
    data = load_dataset(root)
    vids = root.resolve() / videos
    assert data.format == "hmdb51"
    assert data.classes == ["brush_hair", "cartwheel", "ride_bike"]
    label = {"brush_hair": 0, "cartwheel": 1, "ride_bike": 2}
    want = {
        i: [VideoItem(vids / c / v, label[c]) for c, v, j in HMDB_LINES if j == i] for i in (1, 2)
    }
    assert data.train == [item for item in want[1] if "Lost" not in item.path.name]
    assert data.test == want[2]
    assert data.missing == [vids / "cartwheel/Lost_clip_cartwheel_f_cm_np1_ri_med_1.avi"]
    assert (data.listed_train, data.listed_test) == (4, 3)


def test_hmdb51_split_number_picks_its_files(tmp_path: Path):
    root = make_hmdb(tmp_path)
    splits = root / "testTrainMulti_7030_splits"
    for cls, lines in (("brush_hair", ["a.avi 2 "]), ("shoot_ball", ["b.avi 1 ", "c.avi 1 "])):
        write(splits / f"{cls}_test_split3.txt", lines)
    data = load_dataset(root, split=3)
    assert data.classes == ["brush_hair", "shoot_ball"]
    assert (data.listed_train, data.listed_test, len(data.missing)) == (2, 1, 3)
    assert data.missing[0] == root.resolve() / "shoot_ball/b.avi"


def test_hmdb51_errors(tmp_path: Path):
    root = make_hmdb(tmp_path)
    splits = root / "testTrainMulti_7030_splits"
    assert error(root=root, split=2) == (
        f"HMDB51 split 2 does not exist: no *_test_split2.txt in {splits}"
    )
    write(splits / "cartwheel_test_split1.txt", ["a.avi 1", "b.avi train"])
    assert error(root=root).startswith(
        f"{splits / 'cartwheel_test_split1.txt'}:2: expected '<video>.avi <0|1|2>'"
    )
    for cls in ("brush_hair", "cartwheel", "ride_bike"):
        write(splits / f"{cls}_test_split1.txt", ["x.avi 1", "y.avi 0"])
    assert error(root=root) == (
        f"empty split: no video marked test (2) in *_test_split1.txt in {splits}"
    )


# ---------------------------------------------------------------- kinetics

K_HEADER = "label,youtube_id,time_start,time_end,split,is_cc"
K_TRAIN = [
    K_HEADER,
    "abseiling,--07WQ2iBlw,1.0,11.0,train,0",
    '"riding or walking with horse, slowly",-0aQz3bD0kE,14.0,24.0,train,0',
    '"passing American football (in game)",0bzS7aRHqnM,14,24,train,1',
    "abseiling,ZZmissing01,0,10,train,0",
]
K_VAL = [
    K_HEADER,
    '"passing American football (in game)",aaaVAL00001,30.0,40.0,val,0',
    "massaging person's head,bbbVAL00002,5,15,val,0",
]
K_CLASSES = [
    "abseiling",
    "massaging person's head",
    "passing American football (in game)",
    "riding or walking with horse, slowly",
]


def make_kinetics(tmp: Path, csv_dir: str = "annotations") -> Path:
    """Clips in per-label folders as the downloaders write them, any extension, one saved as
    plain ``<youtube_id>.mkv``, one never downloaded."""
    root = tmp / "kinetics"
    write(root / csv_dir / "train.csv", K_TRAIN, "\r\n")
    write(root / csv_dir / "validate.csv", K_VAL)
    write(root / csv_dir / "test.csv", ["youtube_id,time_start,time_end,split", "zzz,0,10,test"])
    touch(root / "train/abseiling/--07WQ2iBlw_000001_000011.mp4")
    touch(root / "train/riding or walking with horse, slowly/-0aQz3bD0kE_000014_000024.webm")
    touch(root / "extra/0bzS7aRHqnM.mkv")
    touch(root / "val/passing American football (in game)/aaaVAL00001_000030_000040.mp4")
    touch(root / "val/massaging person's head/bbbVAL00002_000005_000015.MP4")
    return root


@pytest.mark.parametrize("csv_dir", [".", "annotations"])
def test_kinetics_reads_csvs_and_finds_clips_anywhere(tmp_path: Path, csv_dir: str, caplog):
    root = make_kinetics(tmp_path, csv_dir)
    assert detect_format(root) == "kinetics"
    with caplog.at_level(logging.WARNING, logger="tc3d.datasets.formats"):
        data = load_dataset(root)
    r = root.resolve()
    assert data.format == "kinetics"
    assert data.classes == K_CLASSES
    assert data.train == [
        VideoItem(r / "train/abseiling/--07WQ2iBlw_000001_000011.mp4", 0),
        VideoItem(
            r / "train/riding or walking with horse, slowly/-0aQz3bD0kE_000014_000024.webm", 3
        ),
        VideoItem(r / "extra/0bzS7aRHqnM.mkv", 2),
    ]
    assert data.test == [
        VideoItem(r / "val/passing American football (in game)/aaaVAL00001_000030_000040.mp4", 2),
        VideoItem(r / "val/massaging person's head/bbbVAL00002_000005_000015.MP4", 1),
    ]
    assert data.missing == [r / "ZZmissing01_000000_000010.mp4"]
    assert (data.listed_train, data.listed_test) == (4, 2)
    assert any("labels train.csv lacks" in m for m in caplog.messages)


@pytest.mark.parametrize(
    ("test_csv", "want_test"),
    [
        (K_VAL, 2),  # Kinetics-600/700 test.csv carries labels: it becomes the test side
        (["youtube_id,time_start,time_end,split", "aaaVAL00001,30,40,test"], 0),  # K400's has none
    ],
)
def test_kinetics_without_validate_uses_test_csv_only_when_labelled(tmp_path, test_csv, want_test):
    root = make_kinetics(tmp_path)
    (root / "annotations/validate.csv").unlink()
    write(root / "annotations/test.csv", test_csv)
    data = load_dataset(root)
    assert (len(data.test), data.listed_test, data.listed_train) == (want_test, want_test, 4)


def test_kinetics_csvs_in_splits_dir(tmp_path: Path):
    root = make_kinetics(tmp_path, csv_dir="../k400_csv")
    data = load_dataset(root, splits_dir=tmp_path / "k400_csv")  # the CSVs alone say Kinetics
    assert (data.format, len(data.train), len(data.test)) == ("kinetics", 3, 2)


def test_kinetics_val_csv_and_errors(tmp_path: Path):
    root = make_kinetics(tmp_path)
    ann = root / "annotations"
    (ann / "validate.csv").rename(ann / "val.csv")
    assert len(load_dataset(root).test) == 2
    assert error(root=root, split=2) == f"split 2 does not exist for kinetics data set {root}"
    write(ann / "train.csv", [K_HEADER, "abseiling,x,0,10,train,0", "abseiling,y,zero,10,train,0"])
    assert error(root=root) == f"{ann / 'train.csv'}:3: bad row 'abseiling,y,zero,10,train,0'"
    write(ann / "val.csv", [K_HEADER])
    write(ann / "train.csv", K_TRAIN)
    assert error(root=root) == f"empty split: {ann / 'val.csv'} lists no clips"


# ---------------------------------------------------------------- ucfcrime

# Lines as UCF-Crime ships them: Anomaly_Train.txt / Anomaly_Test.txt list Event/file paths
# (normal videos under Training_/Testing_Normal_Videos_Anomaly), and the annotation file gives
# two 1-based frame intervals per test video, -1 for none, fields separated by two spaces.
CRIME_TRAIN = [
    "Abuse/Abuse001_x264.mp4",
    "Arson/Arson002_x264.mp4",
    "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4",
    "Normal_Videos_event/Normal_Videos_event_001_x264.mp4",
]
CRIME_TEST = [
    "Abuse/Abuse028_x264.mp4",
    "Arson/Arson011_x264.mp4",
    "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
]
CRIME_ANNOTATION = [
    "Abuse028_x264.mp4  Abuse  165  240  -1  -1",
    "Arson011_x264.mp4  Arson  150  420  680  1267",
    "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1",
]


def make_crime(tmp: Path, split_dir: str = "") -> Path:
    """The real download spreads videos over part folders; lists may sit in a split folder."""
    root = tmp / "UCF_Crimes"
    write(root / split_dir / "Anomaly_Train.txt", CRIME_TRAIN, "\r\n")
    write(root / split_dir / "Anomaly_Test.txt", CRIME_TEST, "\r\n")
    write(root / split_dir / "Temporal_Anomaly_Annotation.txt", CRIME_ANNOTATION)
    for rel in CRIME_TRAIN[:2] + CRIME_TEST[:2]:
        touch(root / "Anomaly-Videos-Part-1" / rel)
    for rel in CRIME_TRAIN[2:] + CRIME_TEST[2:]:
        touch(root / rel)
    return root


@pytest.mark.parametrize("split_dir", ["", "Anomaly_Detection_splits"])
def test_ucfcrime_reads_real_lists_and_finds_videos_by_name(tmp_path: Path, split_dir: str):
    root = make_crime(tmp_path, split_dir)
    assert detect_format(root) == "ucfcrime"
    data = load_dataset(root)
    assert data.format == "ucfcrime" and data.classes == ["Abuse", "Arson", "Normal"]
    part = root / "Anomaly-Videos-Part-1"
    assert data.train == [
        VideoItem(part / CRIME_TRAIN[0], 0),
        VideoItem(part / CRIME_TRAIN[1], 1),
        VideoItem(root / CRIME_TRAIN[2], 2),
        VideoItem(root / CRIME_TRAIN[3], 2),  # Normal_Videos_event is normal too
    ]
    assert [i.label for i in data.test] == [0, 1, 2] and not data.missing
    binary = anomaly_binary(data)
    assert binary.classes == ["Normal", "Anomaly"]
    assert [i.label for i in binary.train] == [1, 1, 0, 0]
    assert [i.label for i in binary.test] == [1, 1, 0]
    assert [i.path for i in binary.test] == [i.path for i in data.test]
    assert find_annotation_file(root) == root / split_dir / "Temporal_Anomaly_Annotation.txt"


def test_ucfcrime_temporal_annotation_lines(tmp_path: Path):
    path = write(tmp_path / "Temporal_Anomaly_Annotation.txt", CRIME_ANNOTATION + [
        "Explosion002_x264.mp4\tExplosion\t1\t1\t-1\t-1",  # tabs and a 1-frame event
    ])  # fmt: skip
    notes = read_temporal_annotations(path)
    assert notes == {
        "Abuse028_x264.mp4": AnomalyAnnotation("Abuse", ((164, 240),)),
        "Arson011_x264.mp4": AnomalyAnnotation("Arson", ((149, 420), (679, 1267))),
        "Normal_Videos_003_x264.mp4": AnomalyAnnotation("Normal", ()),
        "Explosion002_x264.mp4": AnomalyAnnotation("Explosion", ((0, 1),)),
    }
    for bad in ("Abuse028_x264.mp4  Abuse  165", "Abuse028_x264.mp4  Abuse  240  165  -1  -1",
                "Abuse028_x264.mp4  Abuse  a  b  -1  -1"):  # fmt: skip
        write(path, [bad])
        with pytest.raises(DatasetFormatError, match="Temporal_Anomaly_Annotation.txt:1: "):
            read_temporal_annotations(path)


def test_ucfcrime_errors(tmp_path: Path):
    root = make_crime(tmp_path)
    (root / "Anomaly-Videos-Part-1" / CRIME_TEST[0]).unlink()
    data = load_dataset(root, format="ucfcrime")
    assert data.missing == [root / CRIME_TEST[0]] and len(data.test) == 2
    write(root / "Anomaly_Train.txt", ["Abuse001_x264.mp4"])
    assert "Anomaly_Train.txt:1: expected 'Event/video.mp4'" in error(root=root)
    assert error(root=root, split=2) == f"split 2 does not exist for ucfcrime data set {root}"
    (root / "Temporal_Anomaly_Annotation.txt").unlink()
    with pytest.raises(DatasetFormatError, match="temporal annotation file not found"):
        find_annotation_file(root)


# ---------------------------------------------------------------- folder


def make_folder(tmp: Path) -> Path:
    root = tmp / "myvideos"
    for name in ("a0.mp4", "a1.mp4", "a2.mp4", "a3.mp4", "a4.mp4", "extra/a5.MP4", "._a0.mp4"):
        touch(root / "class_b" / name)
    (root / "class_b/notes.txt").write_text("not a video")
    touch(root / "class_a/clip2/img_00001.jpg")
    touch(root / "class_a/clip1/img_00001.jpg")
    touch(root / "class_a/clip1/img_00002.jpg")
    touch(root / "class_a/v.avi")
    (root / "docs").mkdir()
    (root / "docs/readme.txt").write_text("no videos here")
    return root


def test_folder_splits_every_fifth_video_per_class(tmp_path: Path):
    root = make_folder(tmp_path)
    assert detect_format(root) == "folder"
    data = load_dataset(root)
    a, b = root.resolve() / "class_a", root.resolve() / "class_b"
    assert data.format == "folder"
    assert data.classes == ["class_a", "class_b"]
    assert data.train == [
        VideoItem(a / "clip1", 0),  # frame folders are items too
        VideoItem(a / "clip2", 0),
        VideoItem(a / "v.avi", 0),
        *(VideoItem(b / n, 1) for n in ("a0.mp4", "a1.mp4", "a2.mp4", "a3.mp4", "extra/a5.MP4")),
    ]
    assert data.test == [VideoItem(b / "a4.mp4", 1)]  # index 4 of the sorted class_b paths
    assert (data.missing, data.listed_train, data.listed_test) == ([], 8, 1)


@pytest.mark.parametrize("test_name", ["test", "val"])
def test_folder_with_train_and_test_folders(tmp_path: Path, test_name: str):
    root = tmp_path / "set"
    for rel in (
        "train/cat/c1.mp4",
        "train/cat/c2.mkv",
        "train/dog/d1.webm",
        f"{test_name}/dog/d9.mov",
    ):
        touch(root / rel)
    data = load_dataset(root, format="folder")
    r = root.resolve()
    assert data.classes == ["cat", "dog"]
    assert data.train == [
        VideoItem(r / "train/cat/c1.mp4", 0),
        VideoItem(r / "train/cat/c2.mkv", 0),
        VideoItem(r / "train/dog/d1.webm", 1),
    ]
    assert data.test == [VideoItem(r / f"{test_name}/dog/d9.mov", 1)]


def test_folder_without_videos(tmp_path: Path):
    (tmp_path / "empty/docs").mkdir(parents=True)
    root = tmp_path / "empty"
    want = f"no class folders with videos (ROOT/<label>/*.mp4) in {root}"
    assert error(root=root, format="folder") == want


# ---------------------------------------------------------------- list


def make_list(tmp: Path) -> Path:
    """A directory of mmaction-style lists: a video path with a space, a raw-frame folder, an
    absolute path outside ROOT, and a listed video that is not on disk."""
    root = tmp / "lists"
    outside = touch(tmp / "outside/x.mp4")
    train = [
        "videos/cat 1.mp4 0",
        "rawframes/dog_0001 120 1",
        f"{outside} 1",
        "videos/missing.mp4 0",
    ]
    write(root / "train.txt", train, "\r\n")
    write(root / "val.txt", ["videos/dog 2.mp4 1"])
    write(root / "labels.txt", ["cat", "", "dog"])
    touch(root / "videos/cat 1.mp4")
    touch(root / "videos/dog 2.mp4")
    touch(root / "rawframes/dog_0001/img_00001.jpg")
    return root


def test_list_directory(tmp_path: Path):
    root = make_list(tmp_path)
    assert detect_format(root) == "list"
    data = load_dataset(root)
    r = root.resolve()
    assert data.format == "list"
    assert data.classes == ["cat", "dog"]
    assert data.train == [
        VideoItem(r / "videos/cat 1.mp4", 0),
        VideoItem(r / "rawframes/dog_0001", 1, num_frames=120),
        VideoItem(tmp_path / "outside/x.mp4", 1),
    ]
    assert data.test == [VideoItem(r / "videos/dog 2.mp4", 1)]
    assert data.missing == [r / "videos/missing.mp4"]
    assert (data.listed_train, data.listed_test) == (4, 1)


def test_list_label_map_in_classind_form(tmp_path: Path):
    root = make_list(tmp_path)
    (root / "labels.txt").unlink()
    write(root / "classInd.txt", ["1 cat", "2 dog"], "\r\n")
    assert detect_format(root) == "list"  # classInd.txt in ROOT itself is a label map, not UCF
    assert load_dataset(root).classes == ["cat", "dog"]


def test_list_file_root_takes_mmaction_sibling_as_test(tmp_path: Path):
    d = tmp_path / "data"
    for s in (1, 2):
        write(d / f"ucf101_train_split_{s}_videos.txt", [f"v{s}.mp4 2"])
        write(d / f"ucf101_val_split_{s}_videos.txt", [f"w{s}.mp4 0", f"w{s}b.mp4 1"])
        touch(d / f"v{s}.mp4")
    root = d / "ucf101_train_split_2_videos.txt"
    assert detect_format(root) == "list"
    data = load_dataset(root)
    assert data.root == root.resolve()
    assert data.classes == ["0", "1", "2"]  # no label map: 0..max label
    assert data.train == [VideoItem(d.resolve() / "v2.mp4", 2)]
    assert data.missing == [d.resolve() / "w2.mp4", d.resolve() / "w2b.mp4"]
    assert (data.listed_train, data.listed_test) == (1, 2)
    assert error(root=d, format="list").startswith(
        f"several train lists in {d.resolve()}: ucf101_train_split_1"
    )


def test_list_file_root_without_test_list(tmp_path: Path):
    root = write(tmp_path / "mine.txt", ["a.mp4 0", "b.mp4 3"])
    touch(tmp_path / "a.mp4")
    data = load_dataset(root)
    assert data.test == [] and data.listed_test == 0
    assert data.train == [VideoItem(tmp_path.resolve() / "a.mp4", 0)]
    assert data.classes == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a.mp4 1 2", "multi-label lines are not supported: 'a.mp4 1 2'"),
        ("frames/a 30 1 2", "multi-label lines are not supported: 'frames/a 30 1 2'"),
        ("a.mp4", "expected 'path label' or 'dir frames label'"),
        ("a.mp4 2", "label 2 outside 0..1"),
        ("a.mp4 -1", "label -1 outside 0..1"),
    ],
)
def test_list_bad_lines(tmp_path: Path, line: str, message: str):
    root = make_list(tmp_path)
    write(root / "val.txt", ["ok.mp4 0", "", line])
    assert error(root=root) == f"{root / 'val.txt'}:3: {message}"


def test_list_errors(tmp_path: Path):
    root = make_list(tmp_path)
    assert error(root=root, split=2) == f"split 2 does not exist for list data set {root}"
    write(root / "val.txt", [" ", ""])
    assert error(root=root) == f"empty split: {root / 'val.txt'} lists no videos"
    (root / "train.txt").unlink()
    want = f"split files not found: no train.txt or *train*.txt in {root}"
    assert error(root=root, format="list") == want


# ---------------------------------------------------------------- detection and common errors


def test_detect_every_format(tmp_path: Path):
    roots = {
        "ucf101": make_ucf(tmp_path),
        "hmdb51": make_hmdb(tmp_path),
        "kinetics": make_kinetics(tmp_path),
        "ucfcrime": make_crime(tmp_path),
        "folder": make_folder(tmp_path),
        "list": make_list(tmp_path),
    }
    assert tuple(roots) == FORMATS
    assert {fmt: detect_format(root) for fmt, root in roots.items()} == {f: f for f in FORMATS}
    assert detect_format(roots["list"] / "train.txt") == "list"
    for fmt, root in roots.items():  # every detected root also loads under its explicit name
        assert load_dataset(root, format=fmt.upper()).format == fmt


def test_common_errors(tmp_path: Path):
    nowhere = tmp_path / "nowhere"
    assert error(root=nowhere) == f"data set root not found: {nowhere}"
    with pytest.raises(DatasetFormatError, match="data set root not found"):
        detect_format(nowhere)
    (tmp_path / "blank/sub").mkdir(parents=True)
    blank = tmp_path / "blank"
    assert error(root=blank).startswith(f"cannot tell the data set format of {blank}: ")
    assert error(root=blank).endswith("; pass --format")
    root = make_folder(tmp_path)
    assert error(root=root, format="crime") == (
        "unknown data set format 'crime'; expected one of ucf101, hmdb51, kinetics, ucfcrime, "
        "folder, list"
    )
    assert error(root=root, split=0) == f"split 0 does not exist for folder data set {root}"
    assert (
        error(root=root, splits_dir=tmp_path / "no")
        == f"splits folder not found: {tmp_path / 'no'}"
    )
    listed = write(tmp_path / "one.txt", ["a.mp4 0"])
    assert error(root=listed, format="ucf101") == (
        f"{listed} is a file; the ucf101 format expects a data set folder"
    )
    assert issubclass(DatasetFormatError, ValueError)
