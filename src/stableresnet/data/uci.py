"""The five UCI data sets of Zhang & Wynter (2018), read from the original files bundled in ``files/uci``.

The files are byte-for-byte copies of the UCI downloads (see ``files/uci/PROVENANCE.md``), except that
``adult.data`` and ``adult.test`` are stored gzip-compressed. Every read checks the sha256 of the
*original* bytes (after decompression) against ``SHA256SUMS``; a mismatch raises `DataError` naming
the file. ``SHA256SUMS`` is also the verbatim UCI-copy list, so it names the two ``.zip`` archives,
which are not shipped. Each loader takes ``root`` (default: the bundled folder) so a copy elsewhere
can be read; that folder needs its own ``SHA256SUMS``.

Every file is read as text first and every column converted explicitly, so a damaged file fails with
a message naming the file, the column, the row and the value rather than turning into NaN silently.

How each file's quirks are handled:

- **wine**: 178 rows, no header; column 1 is the class (1, 2, 3), the other 13 are features.
- **abalone**: ``Sex`` (M/F/I) stays one categorical column (ordinal codes F=0, I=1, M=2 by default),
  so the width is the 8 attributes. ``Rings`` becomes the paper's 3 classes: small 1-8, medium 9-10,
  large 11 and up (29 in the data).
- **absenteeism**: ``;``-separated, CRLF. ``Work load Average/day `` has a trailing space in the header
  (the feature is named without it) and uses ``.`` as a *thousands* separator: ``239.554`` means
  239554 (the ``.xls`` in UCI's archive holds 239554). Values must look like ``ddd.ddd``; anything
  else is refused rather than guessed. The 19 attributes other than ``ID`` and the target are kept as
  the integers the file holds (including coded ones such as ``Reason for absence``), so ``one_hot``
  changes nothing here. The target hours become classes A = 0, B = 1-16, C = 17-56, D > 56.
- **autism**: read with ``scipy.io.arff``. Missing ``?``: ``age`` (2 rows) is left NaN and filled with
  the training median by `build_dataset`; ``ethnicity`` and ``relation`` (95 rows each) get their own
  ``"missing"`` category. Categories are stripped of spaces (``'Middle Eastern '``) and ``others`` is
  merged into ``Others``. ``A1..A10_Score`` are declared nominal only by a Weka filter; they are read
  as the 0/1 numbers they are. The ``age`` outlier 383 is kept as recorded. ``age_desc`` has a single
  level and is kept, giving the paper's 20 attributes. ``result`` is A1+...+A10 and the label is YES
  exactly when ``result >= 7``, so the label leaks from the features; ``drop_leaking=True`` drops
  ``result`` (19 attributes; the scores still determine the label). Default False, as in the paper.
- **adult**: the official train/test files are the split (``seed`` and ``test_size`` are unused).
  Fields are separated by ``", "`` (read as ``,`` plus ``skipinitialspace``). ``adult.test`` must start with its banner line
  ``|1x3 Cross validator``, which is skipped, and its labels carry a trailing ``.``, which is removed.
  Missing ``?`` in ``workclass``, ``occupation`` and ``native-country`` becomes the category
  ``"missing"``. The empty last line of both files is ignored.
"""

import gzip
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import arff

from ..errors import DataError
from .dataset import build_dataset

BUNDLED_ROOT = Path(__file__).parent / "files" / "uci"
MISSING = "missing"  # the category that stands for '?' in autism and adult


def read_verified(root, relative):
    """Return the original bytes of ``root/relative`` (or of its ``.gz``) after checking its sha256.

    Parameters
    ----------
    root : path or None
        Folder holding the file and ``SHA256SUMS``; None means the bundled copies.
    relative : str
        Path as written in ``SHA256SUMS``, e.g. ``"wine/wine.data"``.

    Returns
    -------
    raw : bytes
    path : Path
        The file actually read, for messages.
    """
    root = BUNDLED_ROOT if root is None else Path(root)
    path = root / relative
    compressed = path.with_name(path.name + ".gz")
    if path.is_file():
        raw = path.read_bytes()
    elif compressed.is_file():
        path = compressed
        try:
            raw = gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable gzip file ({err})") from err
    else:
        raise DataError(f"{path}: file not found (nor {compressed.name})")
    expected = _checksums(root / "SHA256SUMS").get(relative)
    if expected is None:
        raise DataError(f"{root / 'SHA256SUMS'}: no checksum listed for {relative}")
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise DataError(f"{path}: sha256 {actual} does not match {expected} in SHA256SUMS; "
                        "the file is damaged or is not the original UCI download")
    if not raw:
        raise DataError(f"{path}: the file is empty")
    if not raw.endswith(b"\n"):  # every original ends with a line break; a cut inside a number still parses
        raise DataError(f"{path}: does not end with a line break; the file looks truncated")
    return raw, path


def _checksums(sums_path):
    if not sums_path.is_file():
        raise DataError(f"{sums_path}: checksum list not found")
    checksums = {}
    for number, line in enumerate(sums_path.read_text().splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if match is None:
            raise DataError(f"{sums_path}: line {number} is not '<sha256>  <file>': {line!r}")
        checksums[match.group(2)] = match.group(1)
    return checksums


def _read_text_table(raw, path, n_columns, **read_csv_options):
    """Parse CSV-like bytes into a frame of strings with exactly `n_columns` columns."""
    try:
        table = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, **read_csv_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse the file: {err}") from err
    if table.shape[1] != n_columns:
        raise DataError(f"{path}: expected {n_columns} columns, found {table.shape[1]} "
                        "(wrong separator or a damaged file?)")
    if len(table) == 0:
        raise DataError(f"{path}: no data rows")
    return table


def _blank(values):
    """Cells that are absent (NaN from a short row) or empty."""
    return values.isna() | (values.str.strip() == "")


def _numbers(table, columns, path, first_row=1):
    """Convert text `columns` to float, refusing blanks and non-numbers with the row they are in."""
    for column in columns:
        values = table[column]
        numbers = pd.to_numeric(values.where(~_blank(values)), errors="coerce")
        bad = np.flatnonzero(numbers.isna().to_numpy())
        if bad.size:
            value = values.iloc[bad[0]]
            found = "nothing" if pd.isna(value) or not value.strip() else repr(value)
            raise DataError(f"{path}: column {column!r}, data row {bad[0] + first_row}: expected a number, "
                            f"found {found} ({bad.size} bad rows)")
        table[column] = numbers.to_numpy(np.float64)
    return table


def _integers(values, path, column, first_row=1):
    """Check that the float column `values` holds whole numbers and return them as int64."""
    fractional = np.flatnonzero(values.to_numpy() != np.round(values.to_numpy()))
    if fractional.size:
        raise DataError(f"{path}: column {column!r}, data row {fractional[0] + first_row}: "
                        f"expected a whole number, found {values.iloc[fractional[0]]!r}")
    return values.to_numpy().astype(np.int64)


def _class_indices(values, class_names, path, column, first_row=1):
    """Map label strings to indices into `class_names`; an unknown label raises DataError."""
    index = {label: k for k, label in enumerate(class_names)}
    indices = values.map(index)
    unknown = np.flatnonzero(indices.isna().to_numpy())
    if unknown.size:
        raise DataError(f"{path}: column {column!r}, data row {unknown[0] + first_row}: unknown label "
                        f"{values.iloc[unknown[0]]!r}, expected one of {list(class_names)}")
    return indices.to_numpy(np.int64)


def _check_levels(table, column, levels, path, first_row=1):
    outside = np.flatnonzero(~table[column].isin(levels).to_numpy())
    if outside.size:
        raise DataError(f"{path}: column {column!r}, data row {outside[0] + first_row}: unexpected value "
                        f"{table[column].iloc[outside[0]]!r}, expected one of {sorted(levels)}")


WINE_FEATURES = (
    "Alcohol", "Malic acid", "Ash", "Alcalinity of ash", "Magnesium", "Total phenols", "Flavanoids",
    "Nonflavanoid phenols", "Proanthocyanins", "Color intensity", "Hue", "OD280/OD315 of diluted wines",
    "Proline",
)


def wine(seed=0, *, test_size=0.2, one_hot=False, root=None):
    """UCI Wine (id 109): 178 wines, 13 chemical constituents, 3 cultivars.

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split.
    test_size : float
        Fraction of rows in the test set.
    one_hot : bool
        Unused in effect: all 13 features are numeric.
    root : path, optional
        Folder holding ``wine/wine.data`` and ``SHA256SUMS``; default the bundled copy.

    Returns
    -------
    Dataset
        13 features, classes ``("1", "2", "3")``.
    """
    raw, path = read_verified(root, "wine/wine.data")
    table = _read_text_table(raw, path, 14, header=None)
    table.columns = ["class", *WINE_FEATURES]
    labels = _class_indices(table["class"].str.strip(), ("1", "2", "3"), path, "class")
    features = _numbers(table[list(WINE_FEATURES)].copy(), WINE_FEATURES, path)
    return build_dataset("wine", features, labels, ("1", "2", "3"),
                         seed=seed, test_size=test_size, one_hot=one_hot)


ABALONE_FEATURES = ("Sex", "Length", "Diameter", "Height", "Whole weight", "Shucked weight",
                    "Viscera weight", "Shell weight")


def abalone(seed=0, *, test_size=0.2, one_hot=False, root=None):
    """UCI Abalone (id 1): 4177 abalones, 8 physical measurements, size from rings in 3 classes.

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split.
    test_size : float
        Fraction of rows in the test set.
    one_hot : bool
        Encode ``Sex`` as three 0/1 columns instead of one ordinal code.
    root : path, optional
        Folder holding ``abalone/abalone.data`` and ``SHA256SUMS``; default the bundled copy.

    Returns
    -------
    Dataset
        8 features (10 with `one_hot`), classes ``("small", "medium", "large")`` for 1-8, 9-10 and
        11+ rings.
    """
    raw, path = read_verified(root, "abalone/abalone.data")
    table = _read_text_table(raw, path, 9, header=None)
    table.columns = [*ABALONE_FEATURES, "Rings"]
    _check_levels(table, "Sex", {"M", "F", "I"}, path)
    table = _numbers(table, [*ABALONE_FEATURES[1:], "Rings"], path)
    rings = _integers(table["Rings"], path, "Rings")
    if rings.min() < 1:
        row = int(np.argmax(rings < 1))
        raise DataError(f"{path}: column 'Rings', data row {row + 1}: expected at least 1 ring, found {rings[row]}")
    labels = np.digitize(rings, [9, 11])  # 1-8 -> 0, 9-10 -> 1, 11+ -> 2
    return build_dataset("abalone", table[list(ABALONE_FEATURES)], labels, ("small", "medium", "large"),
                         seed=seed, test_size=test_size, one_hot=one_hot)


ABSENTEEISM_COLUMNS = (
    "ID", "Reason for absence", "Month of absence", "Day of the week", "Seasons", "Transportation expense",
    "Distance from Residence to Work", "Service time", "Age", "Work load Average/day ", "Hit target",
    "Disciplinary failure", "Education", "Son", "Social drinker", "Social smoker", "Pet", "Weight",
    "Height", "Body mass index", "Absenteeism time in hours",
)
WORKLOAD = "Work load Average/day "  # sic: trailing space in the original header


def absenteeism(seed=0, *, test_size=0.2, one_hot=False, root=None):
    """UCI Absenteeism at work (id 445): 740 absences, 19 attributes, hours absent in 4 classes.

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split.
    test_size : float
        Fraction of rows in the test set.
    one_hot : bool
        Unused in effect: the file holds every attribute as an integer.
    root : path, optional
        Folder holding ``absenteeism/Absenteeism_at_work.csv`` and ``SHA256SUMS``; default the bundled copy.

    Returns
    -------
    Dataset
        19 features, classes ``("A", "B", "C", "D")`` for 0, 1-16, 17-56 and more than 56 hours.
    """
    raw, path = read_verified(root, "absenteeism/Absenteeism_at_work.csv")
    table = _read_text_table(raw, path, len(ABSENTEEISM_COLUMNS), sep=";")
    for number, (found, expected) in enumerate(zip(table.columns, ABSENTEEISM_COLUMNS), start=1):
        if found != expected:
            raise DataError(f"{path}: header column {number} is {found!r}, expected {expected!r}")
    # '.' is a thousands separator here: 239.554 is 239554. Accept only that exact shape.
    workload = table[WORKLOAD]
    malformed = np.flatnonzero(~workload.str.fullmatch(r"\d{1,3}\.\d{3}").to_numpy())
    if malformed.size:
        raise DataError(f"{path}: column {WORKLOAD!r}, data row {malformed[0] + 1}: expected a number with a "
                        f"'.' thousands separator like '239.554', found {workload.iloc[malformed[0]]!r}")
    table[WORKLOAD] = workload.str.replace(".", "", regex=False)
    table = _numbers(table, ABSENTEEISM_COLUMNS, path)
    hours = _integers(table["Absenteeism time in hours"], path, "Absenteeism time in hours")
    if hours.min() < 0:
        row = int(np.argmax(hours < 0))
        raise DataError(f"{path}: column 'Absenteeism time in hours', data row {row + 1}: "
                        f"expected hours >= 0, found {hours[row]}")
    labels = np.digitize(hours, [1, 17, 57])  # 0 -> A, 1-16 -> B, 17-56 -> C, 57+ -> D
    features = table[list(ABSENTEEISM_COLUMNS[1:-1])].rename(columns={WORKLOAD: WORKLOAD.strip()})
    return build_dataset("absenteeism", features, labels, ("A", "B", "C", "D"),
                         seed=seed, test_size=test_size, one_hot=one_hot)


AUTISM_COLUMNS = (
    *(f"A{k}_Score" for k in range(1, 11)), "age", "gender", "ethnicity", "jundice", "austim",
    "contry_of_res", "used_app_before", "result", "age_desc", "relation", "Class/ASD",
)


def autism(seed=0, *, test_size=0.2, one_hot=False, drop_leaking=False, root=None):
    """UCI Autism Screening Adult (id 426): 704 adults, 20 attributes, ASD diagnosis NO/YES.

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split.
    test_size : float
        Fraction of rows in the test set.
    one_hot : bool
        One 0/1 column per category of the 8 categorical attributes instead of ordinal codes.
    drop_leaking : bool
        Drop ``result`` (= A1+...+A10, from which the label follows exactly). Default False keeps the
        paper's 20 attributes.
    root : path, optional
        Folder holding ``autism_adult/Autism-Adult-Data.arff`` and ``SHA256SUMS``; default the bundled copy.

    Returns
    -------
    Dataset
        20 features (19 with `drop_leaking`, then named ``autism-noleak``), classes ``("NO", "YES")``.
    """
    raw, path = read_verified(root, "autism_adult/Autism-Adult-Data.arff")
    try:
        # TextIOWrapper gives universal newlines: the header lines end in LF, the data lines in CRLF.
        records, meta = arff.loadarff(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    except (arff.ArffError, ValueError, IndexError) as err:
        raise DataError(f"{path}: cannot parse as ARFF: {err}") from err
    if tuple(meta.names()) != AUTISM_COLUMNS:
        raise DataError(f"{path}: attributes are {meta.names()}, expected {list(AUTISM_COLUMNS)}")
    if len(records) == 0:
        raise DataError(f"{path}: no data rows")
    table = pd.DataFrame(records)
    nominal = [column for column in AUTISM_COLUMNS if not pd.api.types.is_numeric_dtype(table[column])]
    for column in nominal:  # nominal attributes come back as bytes
        table[column] = table[column].str.decode("utf-8").str.strip()
    labels = _class_indices(table.pop("Class/ASD"), ("NO", "YES"), path, "Class/ASD")
    for column in AUTISM_COLUMNS[:10]:
        _check_levels(table, column, {"0", "1"}, path)
        table[column] = table[column].astype(np.float64)
    if table["result"].isna().any():
        raise DataError(f"{path}: column 'result' has missing values")
    table["ethnicity"] = table["ethnicity"].replace("others", "Others")
    categorical = nominal[10:-1]  # after the ten scores, before the label
    table[categorical] = table[categorical].replace("?", MISSING)
    if drop_leaking:
        table = table.drop(columns="result")
    return build_dataset("autism-noleak" if drop_leaking else "autism", table, labels, ("NO", "YES"),
                         seed=seed, test_size=test_size, one_hot=one_hot)


def autism_noleak(seed=0, *, test_size=0.2, one_hot=False, root=None):
    """UCI Autism Screening Adult without ``result``, the column the label follows from: 19 attributes.

    The same rows, split and encoding as `autism` with ``drop_leaking=True``.
    """
    return autism(seed, test_size=test_size, one_hot=one_hot, drop_leaking=True, root=root)


ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
    "income",
)
ADULT_NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
ADULT_BANNER = b"|1x3 Cross validator"


def _adult_part(root, relative, label_suffix):
    raw, path = read_verified(root, relative)
    first_row = 1
    if relative.endswith(".test"):
        banner = raw.split(b"\n", 1)[0].rstrip(b"\r")
        if banner != ADULT_BANNER:
            raise DataError(f"{path}: first line is {banner[:60]!r}, expected the banner {ADULT_BANNER!r}")
        raw = raw.split(b"\n", 1)[1]
        first_row = 2  # data row numbers in messages count the banner line
    # Fields are separated by ", ": split on the comma and drop the one space after it, so a stray or
    # missing comma changes the field count instead of hiding inside a value.
    table = _read_text_table(raw, path, len(ADULT_COLUMNS), header=None, skipinitialspace=True)
    table.columns = ADULT_COLUMNS
    table = _numbers(table, ADULT_NUMERIC, path, first_row)
    income = table.pop("income")
    if label_suffix:
        income = income.str.removesuffix(label_suffix)
    labels = _class_indices(income, ("<=50K", ">50K"), path, "income", first_row)
    categorical = [column for column in ADULT_COLUMNS[:-1] if column not in ADULT_NUMERIC]
    blank = np.flatnonzero(table[categorical].apply(_blank).any(axis=1).to_numpy())
    if blank.size:
        raise DataError(f"{path}: data row {blank[0] + first_row} has an empty or missing field")
    table[categorical] = table[categorical].replace("?", MISSING)
    return table, labels


def adult(seed=0, *, one_hot=False, root=None):
    """UCI Adult / Census Income (id 2): 48842 adults, 14 attributes, income above 50K or not.

    Parameters
    ----------
    seed : int
        Unused: UCI's official split (32561 train, 16281 test rows) is always used.
    one_hot : bool
        One 0/1 column per category of the 8 categorical attributes instead of ordinal codes.
    root : path, optional
        Folder holding ``adult/adult.data`` and ``adult/adult.test`` (each optionally ``.gz``) and
        ``SHA256SUMS``; default the bundled copy.

    Returns
    -------
    Dataset
        14 features, classes ``("<=50K", ">50K")``.
    """
    train, train_labels = _adult_part(root, "adult/adult.data", "")
    test, test_labels = _adult_part(root, "adult/adult.test", ".")
    return build_dataset("adult", train, train_labels, ("<=50K", ">50K"), seed=seed, test_size=None,
                         one_hot=one_hot, test_features=test, test_labels=test_labels)
