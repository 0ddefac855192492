"""The bundled UCI files: checksums, counts computed independently from the raw files, quirks, and
DataError for damaged copies."""

import csv
import gzip
import hashlib
import io
import re
import shutil

import numpy as np
import pytest

from stableresnet.data import DataError, load_dataset
from stableresnet.data.uci import BUNDLED_ROOT


def original_bytes(relative):
    """Bytes of a bundled file as UCI ships it (decompressing the .gz copies)."""
    path = BUNDLED_ROOT / relative
    if path.is_file():
        return path.read_bytes()
    return gzip.decompress(path.with_name(path.name + ".gz").read_bytes())


def listed_checksums():
    return dict(reversed(line.split("  ")) for line in (BUNDLED_ROOT / "SHA256SUMS").read_text().splitlines())


def provenance_table():
    """(bytes, sha256) per file from the summary table of PROVENANCE.md."""
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|", (BUNDLED_ROOT / "PROVENANCE.md").read_text(), re.M)
    return {name: (int(size), digest) for name, size, digest in rows}


SHIPPED = [name for name in listed_checksums() if not name.endswith(".zip")]


@pytest.mark.parametrize("relative", SHIPPED)
def test_bundled_file_is_the_original(relative):
    raw = original_bytes(relative)
    digest = hashlib.sha256(raw).hexdigest()
    assert digest == listed_checksums()[relative]
    assert (len(raw), digest) == provenance_table()[relative]


def test_every_provenance_entry_is_listed_in_sha256sums():
    assert {name: digest for name, (_, digest) in provenance_table().items()} == listed_checksums()


def csv_rows(relative, delimiter=","):
    text = original_bytes(relative).decode()
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]


def class_counts(data):
    labels = np.concatenate([data.y_train, data.y_test])
    return {name: int((labels == k).sum()) for k, name in enumerate(data.class_names)}


def test_wine_matches_raw_file():
    rows = csv_rows("wine/wine.data")
    data = load_dataset("wine")
    assert len(rows) == 178 == len(data.y_train) + len(data.y_test)
    assert data.n_features == len(rows[0]) - 1 == 13
    assert class_counts(data) == {"1": 59, "2": 71, "3": 48}
    assert class_counts(data) == {c: sum(row[0] == c for row in rows) for c in "123"}


def test_abalone_matches_raw_file():
    rows = csv_rows("abalone/abalone.data")
    rings = [int(row[8]) for row in rows]
    data = load_dataset("abalone")
    assert len(rows) == 4177 == len(data.y_train) + len(data.y_test)
    assert data.n_features == 8
    assert class_counts(data) == {"small": sum(r <= 8 for r in rings), "medium": sum(9 <= r <= 10 for r in rings),
                                  "large": sum(r >= 11 for r in rings)}
    assert data.feature_names[0] == "Sex"
    sex_codes = np.unique(np.concatenate([data.X_train[:, 0], data.X_test[:, 0]]))
    np.testing.assert_array_equal(sex_codes, [0, 1, 2])  # F, I, M
    assert load_dataset("abalone", one_hot=True).n_features == 10


def test_absenteeism_matches_raw_file_and_parses_thousands_separator():
    header, *rows = csv_rows("absenteeism/Absenteeism_at_work.csv", delimiter=";")
    hours = [int(row[-1]) for row in rows]
    data = load_dataset("absenteeism")
    assert len(rows) == 740 == len(data.y_train) + len(data.y_test)
    assert data.n_features == len(header) - 2 == 19
    assert class_counts(data) == {"A": hours.count(0), "B": sum(1 <= h <= 16 for h in hours),
                                  "C": sum(17 <= h <= 56 for h in hours), "D": sum(h > 56 for h in hours)}
    workload = data.feature_names.index("Work load Average/day")
    expected = sorted(int(row[header.index("Work load Average/day ")].replace(".", "")) for row in rows)
    assert sorted(np.concatenate([data.X_train[:, workload], data.X_test[:, workload]])) == expected
    assert min(expected) > 200_000  # 205.917 is 205917, not 205.9


def autism_rows():
    text = original_bytes("autism_adult/Autism-Adult-Data.arff").decode()
    body = text.split("@data", 1)[1]
    return [line.split(",") for line in body.splitlines() if line.strip()]


def test_autism_matches_raw_file():
    rows = autism_rows()
    data = load_dataset("autism")
    assert len(rows) == 704 == len(data.y_train) + len(data.y_test)
    assert data.n_features == len(rows[0]) - 1 == 20
    assert class_counts(data) == {"NO": 515, "YES": 189}
    assert class_counts(data) == {c: sum(row[-1] == c for row in rows) for c in ("NO", "YES")}
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()  # '?' handled


def test_autism_leak_option_and_category_clean_up():
    data = load_dataset("autism", one_hot=True)
    assert "result" in data.feature_names
    assert "ethnicity=Others" in data.feature_names and "ethnicity=others" not in data.feature_names
    assert "ethnicity=Middle Eastern" in data.feature_names and "ethnicity=missing" in data.feature_names
    lean = load_dataset("autism", drop_leaking=True)
    assert lean.n_features == 19 and "result" not in lean.feature_names
    ages = np.concatenate([lean.X_train[:, 10], lean.X_test[:, 10]])
    assert ages.max() == 383  # the recorded outlier is kept


def adult_rows(relative):
    lines = original_bytes(relative).decode().splitlines()
    if relative.endswith(".test"):
        assert lines[0] == "|1x3 Cross validator"
        lines = lines[1:]
    return [line.split(", ") for line in lines if line]


def test_adult_uses_the_official_split():
    train, test = adult_rows("adult/adult.data"), adult_rows("adult/adult.test")
    data = load_dataset("adult")
    assert (len(data.y_train), len(data.y_test)) == (len(train), len(test)) == (32561, 16281)
    assert data.n_features == 14
    for y, rows, suffix, counts in ((data.y_train, train, "", (24720, 7841)), (data.y_test, test, ".", (12435, 3846))):
        assert tuple(np.bincount(y)) == counts
        assert counts == (sum(r[-1] == "<=50K" + suffix for r in rows), sum(r[-1] == ">50K" + suffix for r in rows))
    np.testing.assert_array_equal(data.X_train[:, 0], [float(row[0]) for row in train])  # row order kept


# ---- damaged copies ---------------------------------------------------------------------------------

def damaged_root(tmp_path, relative, transform, update_sums=True):
    """A data folder whose `relative` file is `transform(original)`; the checksum list follows if asked."""
    original = original_bytes(relative)
    raw = transform(original)
    (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / relative).write_bytes(raw)
    digest = hashlib.sha256(raw if update_sums else original).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  {relative}\n")
    return tmp_path


def test_damaged_file_fails_its_checksum(tmp_path):
    root = damaged_root(tmp_path, "wine/wine.data", lambda raw: raw[:5000], update_sums=False)
    with pytest.raises(DataError, match=r"wine\.data: sha256 .* does not match"):
        load_dataset("wine", root=root)


def test_corrupt_gzip_copy_is_refused(tmp_path):
    (tmp_path / "adult").mkdir()
    shutil.copy(BUNDLED_ROOT / "SHA256SUMS", tmp_path)
    (tmp_path / "adult" / "adult.data.gz").write_bytes((BUNDLED_ROOT / "adult" / "adult.data.gz").read_bytes()[:1000])
    with pytest.raises(DataError, match=r"adult\.data\.gz: not a readable gzip file"):
        load_dataset("adult", root=tmp_path)


def test_missing_file_and_missing_checksum(tmp_path):
    with pytest.raises(DataError, match="wine.data: file not found"):
        load_dataset("wine", root=tmp_path)
    root = damaged_root(tmp_path, "wine/wine.data", lambda raw: raw)
    (root / "SHA256SUMS").write_text("")
    with pytest.raises(DataError, match="SHA256SUMS: no checksum listed for wine/wine.data"):
        load_dataset("wine", root=root)


def replace_once(old, new):
    def transform(raw):
        assert old in raw
        return raw.replace(old, new, 1)
    return transform


DAMAGE = [
    ("wine", "wine/wine.data", lambda raw: raw[:5000], "does not end with a line break"),
    ("wine", "wine/wine.data", lambda raw: raw.replace(b",", b";"), "expected 14 columns, found 1"),
    ("wine", "wine/wine.data", replace_once(b"1,14.23,", b"1,14.23,7,"), "expected 14 columns, found 15"),
    ("wine", "wine/wine.data", replace_once(b"1,13.2,", b"1,1x.2,"), r"'Alcohol', data row 2: expected a number, found '1x.2'"),
    ("wine", "wine/wine.data", replace_once(b"1,14.23,", b"4,14.23,"), r"data row 1: unknown label '4'"),
    ("wine", "wine/wine.data", lambda raw: b"", "the file is empty"),
    ("abalone", "abalone/abalone.data", lambda raw: b"\n".join(line[: line.rfind(b",")] for line in raw.split(b"\n")) + b"\n",
     "expected 9 columns, found 8"),
    ("abalone", "abalone/abalone.data", replace_once(b"M,0.455,", b"M,0.455,0.3,"), "expected 9 columns, found 10"),
    ("abalone", "abalone/abalone.data", replace_once(b"M,0.35,", b"M,0.35,0.3,"), "cannot parse the file.*line 2"),
    ("abalone", "abalone/abalone.data", replace_once(b"M,0.455,", b"X,0.455,"), r"'Sex', data row 1: unexpected value 'X'"),
    ("abalone", "abalone/abalone.data", replace_once(b",15\n", b",15.5\n"), r"'Rings', data row 1: expected a whole number"),
    ("absenteeism", "absenteeism/Absenteeism_at_work.csv", replace_once(b"239.554", b"239554"), "thousands separator"),
    ("absenteeism", "absenteeism/Absenteeism_at_work.csv", replace_once(b"/day ;", b"/day;"),
     "header column 10 is 'Work load Average/day'"),
    ("absenteeism", "absenteeism/Absenteeism_at_work.csv", lambda raw: raw.replace(b";", b","), "expected 21 columns, found 1"),
    ("autism", "autism_adult/Autism-Adult-Data.arff", replace_once(b",NO\r\n", b",MAYBE\r\n"), "MAYBE value not in"),
    ("autism", "autism_adult/Autism-Adult-Data.arff", replace_once(b"26,f", b"abc,f"), "cannot parse as ARFF.*'abc'"),
    ("autism", "autism_adult/Autism-Adult-Data.arff", lambda raw: raw.split(b"@data")[0] + b"@data\n", "no data rows"),
    ("adult", "adult/adult.test", lambda raw: raw.split(b"\n", 1)[1], "expected the banner"),
    ("adult", "adult/adult.test", replace_once(b"<=50K.\n", b"<=50K?\n"), r"data row 2: unknown label '<=50K\?'"),
    ("adult", "adult/adult.data", replace_once(b"39, State-gov, 77516,", b"39, State-gov, 77516x,"),
     r"'fnlwgt', data row 1: expected a number"),
    ("adult", "adult/adult.data", replace_once(b"39, State-gov, 77516,", b"39, State-gov,, 77516,"), "expected 15 columns|cannot parse"),
]


@pytest.mark.parametrize("name, relative, transform, message", DAMAGE,
                         ids=[f"{name}-{k}" for k, (name, *_rest) in enumerate(DAMAGE)])
def test_damaged_copy_raises_data_error_naming_file(tmp_path, name, relative, transform, message):
    root = damaged_root(tmp_path, relative, transform)
    if name == "adult":  # the other half of the official split, intact
        other = "adult/adult.test" if relative.endswith(".data") else "adult/adult.data"
        (root / other).write_bytes(original_bytes(other))
        with open(root / "SHA256SUMS", "a") as sums:
            sums.write(f"{listed_checksums()[other]}  {other}\n")
    with pytest.raises(DataError, match=message) as error:
        load_dataset(name, root=root)
    assert relative.rsplit("/", 1)[1] in str(error.value)
