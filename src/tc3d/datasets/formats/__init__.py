"""Data-set layouts -> lists of (video path, label): UCF101, HMDB51, Kinetics, UCF-Crime, folder,
list, one reader module per layout as the set ships it.

Each public data set ships its own split files, with quirks that silently lose videos if read
naively (CRLF and BOMs in UCF101's lists, class-name case mismatches such as
``HandstandPushups``/``HandStandPushups``, trailing spaces and odd characters in HMDB51's
names, quoted labels in Kinetics CSVs). :mod:`.load` detects the layout and hands the folder to
its reader; :mod:`.split` holds what they all return. This package only hands those names on.
"""

from tc3d.datasets.formats.load import FORMATS, detect_format, load_dataset
from tc3d.datasets.formats.split import DatasetFormatError, DataSplit, VideoItem
from tc3d.datasets.formats.ucfcrime import CRIME_DIRS, NORMAL, is_normal_folder

__all__ = [
    "CRIME_DIRS",
    "FORMATS",
    "NORMAL",
    "DataSplit",
    "DatasetFormatError",
    "VideoItem",
    "detect_format",
    "is_normal_folder",
    "load_dataset",
]
