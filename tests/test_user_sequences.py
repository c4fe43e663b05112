"""The FASTA importer: labels, letters, length policies, motif ground truth (sites table and JASPAR scan),
one-line errors, the user registry round trip and a training smoke test."""
from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from xai_core.data import UserDataError, detect_format, import_data, load_dataset
from xai_core.data.jaspar import JASPAR_RELEASE, consensus, one_hot, reverse_complement_string, to_strings
from xai_core.data.load_sequences import (BACKGROUND, from_fasta, jaspar_frequencies, log_odds, scan_jaspar,
                                          scan_scores)

SP1 = "MA0079.3"  # SP1 in JASPAR 2016, the release the bundled DNA data uses


def write_fasta(path, records, width=7):
    """records: (header, sequence); sequences wrapped over several lines to test multi-line records."""
    lines = []
    for head, seq in records:
        lines.append(f">{head}")
        lines += [seq[i:i + width] for i in range(0, len(seq), width)] or [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def random_seqs(n, length, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def labelled(tmp_path, seqs, labels=None, name="s.fa"):
    labels = labels or [str(i % 2) for i in range(len(seqs))]
    return write_fasta(tmp_path / name, [(f"s{i} label={lab}", s) for i, (s, lab) in enumerate(zip(seqs, labels))])


def info(ds):
    return ds.ground_truth.information_content()


# -- labels and letters ---------------------------------------------------------------------------------
def test_header_labels_both_styles_and_one_hot(tmp_path):
    seqs = ["ACGTacgt", "TTTTGGGG", "CCCCAAAA", "GATCGATC"]
    path = write_fasta(tmp_path / "a.fasta", [("r1 label=pos some text", seqs[0]), ("r2|neg", seqs[1]),
                                              ("r3 desc label=neg", seqs[2]), ("r4|pos", seqs[3])])
    ds = from_fasta(path, name="t")
    assert ds.sample_ids == ["r1", "r2", "r3", "r4"]
    assert ds.class_names == ["neg", "pos"] and ds.y.tolist() == [1, 0, 0, 1]
    assert ds.X.shape == (4, 4, 8) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X, one_hot([s.upper() for s in seqs]))
    assert ds.modality == "sequence" and ds.ground_truth is None


def test_labels_csv_with_split_column(tmp_path):
    seqs = random_seqs(6, 10)
    path = write_fasta(tmp_path / "x.fa", [(f"id{i} whatever", s) for i, s in enumerate(seqs)])
    lab = tmp_path / "labels.csv"
    lab.write_text("id,label,split\n" + "".join(f"id{i},{'AB'[i % 2]},{'test' if i >= 4 else 'train'}\n"
                                                for i in reversed(range(6))))
    ds = from_fasta(path, labels=lab)
    assert ds.y.tolist() == [0, 1, 0, 1, 0, 1] and ds.class_names == ["A", "B"]
    assert ds.train_idx.tolist() == [0, 1, 2, 3] and ds.test_idx.tolist() == [4, 5]
    assert ds.params["label_source"] == "labels file"


@pytest.mark.parametrize("policy, column", [("uniform", 0.25), ("zero", 0.0)])
def test_n_policy(tmp_path, policy, column):
    ds = from_fasta(labelled(tmp_path, ["ACNT", "nCGT", "AAAA", "CCCC"]), n_policy=policy)
    np.testing.assert_array_equal(ds.X[0, :, 2], [column] * 4)
    np.testing.assert_array_equal(ds.X[1, :, 0], [column] * 4)
    np.testing.assert_array_equal(ds.X[0, :, 3], [0, 0, 0, 1])
    assert ds.params["n_policy"] == policy


def test_gzip_and_detection(tmp_path):
    plain = labelled(tmp_path, random_seqs(4, 12))
    gz = tmp_path / "reads.fa.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    odd = tmp_path / "seqs.txt"
    odd.write_bytes(plain.read_bytes())
    for p in (plain, gz, odd):
        assert detect_format(p, kind="sequence").name == "fasta"
    np.testing.assert_array_equal(from_fasta(gz).X, from_fasta(plain).X)


# -- length policies --------------------------------------------------------------------------------------
LENGTH_CASES = [  # policy, align, length, expected strings (N = padding)
    ("pad", "center", None, ["NACGTACN", "ACGTACGT", "NNACGTNN", "ACGTACGN"]),  # odd: extra N right
    ("pad", "left", 9, ["ACGTACNNN", "ACGTACGTN", "ACGTNNNNN", "ACGTACGNN"]),
    ("crop", "center", None, ["CGTA", "GTAC", "ACGT", "CGTA"]),
    ("crop", "left", 3, ["ACG", "ACG", "ACG", "ACG"]),
    ("pad_crop", "center", 5, ["ACGTA", "CGTAC", "ACGTN", "CGTAC"]),
]


@pytest.mark.parametrize("policy, align, length, expected", LENGTH_CASES)
def test_length_policies(tmp_path, policy, align, length, expected):
    seqs = ["ACGTAC", "ACGTACGT", "ACGT", "ACGTACG"]
    ds = from_fasta(labelled(tmp_path, seqs), length_policy=policy, align=align, length=length, n_policy="zero")
    assert ds.X.shape == (4, 4, len(expected[0]))
    assert to_strings(ds.X) == expected
    assert ds.params["length_policy"] == policy and ds.params["original_length_range"] == [4, 8]


def test_fixed_refuses_unequal_lengths(tmp_path):
    path = labelled(tmp_path, ["ACGTAC", "ACGTACGT", "ACG", "ACGTA"])
    with pytest.raises(UserDataError, match=r"s\.fa: sequences differ in length \(shortest 's2' \(3\), longest "
                                            r"'s1' \(8\)\).*length_policy"):
        from_fasta(path)
    with pytest.raises(UserDataError, match="pad_crop needs a length"):
        from_fasta(path, length_policy="pad_crop")


# -- ground truth: known sites ---------------------------------------------------------------------------
@pytest.mark.parametrize("policy, length, shift", [("fixed", None, 0), ("pad", 14, 2), ("crop", 6, -2),
                                                   ("pad_crop", 8, -1)])
def test_motif_sites_table(tmp_path, policy, length, shift):
    seqs = random_seqs(4, 10, seed=1)
    sites = tmp_path / "sites.csv"
    sites.write_text("id,start,end,name\ns0,3,6,A\ns1,1,4,B\ns2,5,8,A\n")
    ds = from_fasta(labelled(tmp_path, seqs), motifs=sites, length_policy=policy, length=length)
    L = ds.X.shape[2]
    expected = np.zeros((4, L), dtype=bool)
    for i, (s, e) in {0: (3, 6), 1: (1, 4), 2: (5, 8)}.items():
        expected[i, max(s + shift, 0):min(e + shift, L)] = True
    np.testing.assert_array_equal(info(ds) > 0.1, expected)
    pwm = ds.ground_truth.pwm
    np.testing.assert_array_equal(pwm[expected.nonzero()[0], :, expected.nonzero()[1]],
                                  ds.X[expected.nonzero()[0], :, expected.nonzero()[1]])
    assert np.all(pwm[~np.broadcast_to(expected[:, None, :], pwm.shape)] == BACKGROUND)
    assert ds.params["sites_partly_cropped"] == (1 if policy == "crop" else 0)


def test_site_errors(tmp_path):
    path = labelled(tmp_path, random_seqs(4, 10))
    sites = tmp_path / "sites.csv"
    sites.write_text("id,start,end,name\ns0,8,11,A\n")
    with pytest.raises(UserDataError, match=r"sites\.csv: row 2: site 8-11 lies outside 's0' \(length 10\)"):
        from_fasta(path, motifs=sites)
    sites.write_text("id,start,end,name\nchr9,1,3,A\n")
    with pytest.raises(UserDataError, match=r"sites\.csv: row 2: id 'chr9' is not a record"):
        from_fasta(path, motifs=sites)


# -- ground truth: JASPAR scan ----------------------------------------------------------------------------
def test_scan_matches_a_numpy_loop():
    _, _, f = jaspar_frequencies(SP1, JASPAR_RELEASE)
    lo = log_odds(f)
    X = one_hot(random_seqs(3, 30, seed=4))
    X[1, :, 5] = 0  # an N scores 0
    got = scan_scores(X, lo)
    w = lo.shape[1]
    rc = lo[::-1, ::-1]
    for i in range(3):
        for p in (0, 5, 11, 30 - w):
            plus = sum(lo[:, j] @ X[i, :, p + j] for j in range(w))
            minus = sum(rc[:, j] @ X[i, :, p + j] for j in range(w))
            np.testing.assert_allclose(got[i, :, p], [plus, minus], rtol=0, atol=1e-12)


def test_jaspar_scan_finds_planted_sites(tmp_path):
    _, name, f = jaspar_frequencies(SP1, JASPAR_RELEASE)
    cons = consensus(f)
    w = len(cons)
    plants = {0: (10, "+"), 1: (60, "-"), 2: (33, "+"), 3: (0, "-"), 4: (120 - w, "+"), 5: (70, "-")}
    seqs = random_seqs(8, 120, seed=2)
    for i, (p, strand) in plants.items():
        site = cons if strand == "+" else reverse_complement_string(cons)
        seqs[i] = seqs[i][:p] + site + seqs[i][p + w:]
    ds = from_fasta(labelled(tmp_path, seqs), jaspar=SP1, jaspar_release=JASPAR_RELEASE, jaspar_threshold=0.97)
    codes = np.argmax(ds.X, axis=1).astype(np.uint8)
    hits = scan_jaspar(codes, np.ones(codes.shape, bool), {SP1: f}, 0.97)
    found = {(h.seq, h.start, h.strand) for h in hits}
    assert {(i, p, s) for i, (p, s) in plants.items()} <= found
    assert len(found) <= len(plants) + 1  # random background: (almost) no hit at a strict threshold
    assert ds.params["jaspar_hits"][SP1] == len(hits) and ds.params["jaspar_motifs"] == {SP1: name}
    ic = info(ds)
    for i, (p, strand) in plants.items():
        col = f if strand == "+" else f[::-1, ::-1]
        np.testing.assert_allclose(ds.ground_truth.pwm[i, :, p:p + w], col, atol=1e-6)
        assert ic[i, p:p + w].max() > 1.0


def test_jaspar_errors(tmp_path):
    path = labelled(tmp_path, random_seqs(4, 30))
    with pytest.raises(UserDataError, match=r"s\.fa: JASPAR matrix 'MA9999\.1' is not in JASPAR2016"):
        from_fasta(path, jaspar="MA0079.3, MA9999.1", jaspar_release="JASPAR2016")
    with pytest.raises(UserDataError, match=r"unknown JASPAR release 'JASPAR1999'.*JASPAR2014.*JASPAR2026"):
        from_fasta(path, jaspar=SP1, jaspar_release="JASPAR1999")


# -- one test per bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("letter", ["U", "R", "y", "-"])
def test_bad_letters(tmp_path, letter):
    path = labelled(tmp_path, ["ACGTACGT", "ACGTACGT", "ACG" + letter + "ACGT"[:4], "ACGTACGT"])
    with pytest.raises(UserDataError, match=re.escape(f"s.fa: record 's2' has the letter '{letter}' at position 4; "
                                                      "only A, C, G, T and N")):
        from_fasta(path)


def test_missing_label(tmp_path):
    path = write_fasta(tmp_path / "m.fa", [("a label=1", "ACGT"), ("b", "ACGT"), ("c label=0", "ACGT")])
    with pytest.raises(UserDataError, match=r"m\.fa: record 'b' has no label; write '>ID label=CLASS'"):
        from_fasta(path)


def test_one_class(tmp_path):
    with pytest.raises(UserDataError, match=r"s\.fa: label has one class only \('x'\)"):
        from_fasta(labelled(tmp_path, random_seqs(4, 8), ["x"] * 4))


def test_class_with_one_sequence(tmp_path):
    with pytest.raises(UserDataError, match=r"s\.fa: class\(es\) with fewer than 2 samples: 'b' \(1\)"):
        from_fasta(labelled(tmp_path, random_seqs(4, 8), ["a", "a", "a", "b"]))


def test_duplicated_ids(tmp_path):
    path = write_fasta(tmp_path / "d.fa", [("a|1", "ACGT"), ("b|0", "ACGT"), ("a|0", "ACGT"), ("c|1", "ACGT")])
    with pytest.raises(UserDataError, match=r"d\.fa: duplicated record id\(s\): 'a'"):
        from_fasta(path)


# -- registry round trip and a model -------------------------------------------------------------------
def test_import_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("XAI_CORE_CACHE", str(tmp_path / "cache"))
    from xai_core.data import user

    path = labelled(tmp_path, random_seqs(8, 20, seed=3))
    sites = tmp_path / "sites.csv"
    sites.write_text("id,start,end,name\ns1,2,9,X\n")
    ds, entry, reused = import_data(path, "my-seqs", motifs=str(sites))
    assert not reused and entry["format"] == "fasta" and entry["kind"] == "sequence"
    back = load_dataset("my-seqs")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.ground_truth.pwm, ds.ground_truth.pwm)
    assert back.sample_ids == ds.sample_ids and back.params["length_policy"] == "fixed"
    assert import_data(path, "my-seqs", motifs=str(sites))[2]  # unchanged files: reused
    user.remove("my-seqs")


def test_dna_shallow_trains_on_an_import(tmp_path):
    from xai_core.models import train_model

    path = labelled(tmp_path, random_seqs(16, 90, seed=5) + random_seqs(8, 130, seed=6))
    ds = from_fasta(path, length_policy="pad_crop", length=120)
    assert ds.input_shape == (4, 120) and "too_short_for" not in ds.params
    model, report = train_model(ds, "dna_shallow", epochs=1)
    assert report.epochs_run == 1
