"""Synthetic regulatory-code DNA (protocol §3.2): motifs, generator, ground truth, dataset."""
from __future__ import annotations

import numpy as np
import pytest

from xai_core.data import dna
from xai_core.data.dataset import Dataset

N = 600


@pytest.fixture(scope="module")
def code():
    return dna.generate_synthetic_code(n=N, seed=22)


@pytest.fixture(scope="module")
def ds():
    return dna.build_dna_motifs(name="dna-motifs-test", n=N, seed=22)


# -- helpers ------------------------------------------------------------------------------------------
def test_one_hot_round_trip_and_reverse_complement():
    seqs = ["ACGTTGCA", "aaccggtt", "ACGNACGT"]
    X = dna.one_hot(seqs)
    assert X.shape == (3, 4, 8) and X.dtype == np.float32
    assert np.all(X[:2].sum(axis=1) == 1)
    assert X[2, :, 3].sum() == 0  # N -> all-zero column
    assert dna.to_strings(X) == ["ACGTTGCA", "AACCGGTT", "ACGNACGT"]
    rc = dna.reverse_complement(X)
    assert dna.to_strings(rc) == [dna.reverse_complement_string(s) for s in dna.to_strings(X)]
    assert dna.to_strings(rc)[0] == "TGCAACGT"
    assert np.array_equal(dna.reverse_complement(rc), X)


# -- motifs -------------------------------------------------------------------------------------------
def test_vertebrate_motifs_stand_in_for_the_519_motif_file():
    ids = dna.vertebrate_motif_ids()
    assert len(ids) == 519
    assert ids[:4] == ["MA0002.2", "MA0003.3", "MA0004.1", "MA0006.1"]
    assert ids[36] == "MA0058.3"


def test_core_motifs_are_the_right_jaspar_ids_both_strands():
    core = dna.core_motifs()
    assert len(core) == 10
    assert [m.matrix_id for m in core[::2]] == ["MA0079.3", "MA0062.2", "MA0466.2", "MA0058.3",
                                                "MA0095.2"]
    assert [m.name.upper() for m in core[::2]] == ["SP1", "GABPA", "CEBPB", "MAX", "YY1"]
    assert [m.strand for m in core] == ["+", "-"] * 5
    for fwd, rev in zip(core[::2], core[1::2]):
        assert fwd.matrix_id == rev.matrix_id
        np.testing.assert_allclose(fwd.pwm.sum(axis=0), 1.0)
        assert np.array_equal(dna.reverse_complement(rev.pwm), fwd.pwm)
        assert np.array_equal(rev.pwm, fwd.pwm[::-1, ::-1])
    max_fwd = dna.consensus(dna.motif_by_id("MA0058.3").pwm)
    assert "CACGTG" in max_fwd
    assert "CACGTG" in dna.consensus(core[7].pwm)  # the E-box is palindromic
    assert dna.consensus(core[7].pwm) == dna.reverse_complement_string(max_fwd)


def test_background_pool_selection():
    bg = dna.background_motifs(seed=22)
    assert len(bg) == 10 + 2 * 50
    assert [(m.matrix_id, m.strand) for m in bg[:10]] == [(m.matrix_id, m.strand)
                                                         for m in dna.core_motifs()]
    extra = [m.matrix_id for m in bg[10::2]]
    assert len(set(extra)) == 50 and not set(extra) & set(dna.CORE_MOTIF_IDS)
    # the notebook's logic, verbatim, on the id-sorted stand-in for the file
    np.random.seed(22)
    motif_index = np.random.permutation(519)[0:65]
    motif_index = set(motif_index) - {4, 5, 12, 15, 17, 18, 20, 36, 42, 60}
    ids = dna.vertebrate_motif_ids()
    assert extra == [ids[i] for i in list(motif_index)[:50]]


# -- generator ----------------------------------------------------------------------------------------
def test_shapes_one_hot_and_balance(code):
    assert code.X.shape == (N, 4, 200) and code.X.dtype == np.float32
    assert code.pwm.shape == (N, 4, 200)
    assert np.all(code.X.sum(axis=1) == 1)
    assert set(np.unique(code.X)) == {0.0, 1.0}
    assert code.y.sum() == N // 2 and np.all(code.y[: N // 2] == 1) and np.all(code.y[N // 2:] == 0)


def test_seed_reproducibility():
    a = dna.generate_synthetic_code(n=100, seed=5)
    b = dna.generate_synthetic_code(n=100, seed=5)
    c = dna.generate_synthetic_code(n=100, seed=6)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.pwm, b.pwm)
    assert a.planted == b.planted and np.array_equal(a.test_idx, b.test_idx)
    assert not np.array_equal(a.X, c.X)


def _notebook_reference(n, length, seed):
    """The original notebook's generate_model / simulate_sequence / split, transcribed literally
    (global np.random, per-position loop), on the same motif pools."""
    np.random.seed(seed)
    ids = dna.vertebrate_motif_ids()
    motif_set = [dna.motif_by_id(i).pwm for i in ids]
    core_motifs = [m.pwm for m in dna.core_motifs()]
    motif_index = np.random.permutation(len(motif_set))[0:65]
    motif_index = set(motif_index) - set([4, 5, 12, 15, 17, 18, 20, 36, 42, 60])
    background_motifs = list(core_motifs)
    for index in list(motif_index)[:50]:
        pwm = motif_set[index]
        background_motifs.append(pwm)
        reverse = pwm[:, ::-1]
        background_motifs.append(reverse[::-1, :])

    def generate_model(core_motifs, seq_length):
        num_motif = len(core_motifs)
        cum_dist = np.cumsum([0, 0, 0.5, 0.25, 0.17, .05, 0.3])
        valid_sim = False
        while not valid_sim:
            num_interactions = np.where(np.random.rand() > cum_dist)[0][-1] + 2
            sim_motifs = np.random.randint(num_motif, size=num_interactions)
            num_sim_motifs = len(sim_motifs)
            distance = 0
            for i in range(num_sim_motifs):
                distance += core_motifs[sim_motifs[i]].shape[1]
            if seq_length > distance > 0:
                valid_sim = True
        valid_dist = False
        while not valid_dist:
            remainder = seq_length - distance
            sep = np.random.uniform(0, 2, size=num_sim_motifs + 1)
            sep = np.round(sep / sum(sep) * remainder).astype(int)
            if np.sum(sep) == remainder:
                valid_dist = True
        pwm = np.ones((4, sep[0])) / 4
        for i in range(num_sim_motifs):
            pwm = np.hstack([pwm, core_motifs[sim_motifs[i]], np.ones((4, sep[i + 1])) / 4])
        return pwm

    def simulate_sequence(sequence_pwm):
        seq_length = sequence_pwm.shape[1]
        Z = np.random.uniform(0, 1, seq_length)
        cum_prob = sequence_pwm.cumsum(axis=0)
        one_hot_seq = np.zeros((4, seq_length))
        for i in range(seq_length):
            index = [j for j in range(4) if Z[i] < cum_prob[j, i]][0]
            one_hot_seq[index, i] = 1
        return one_hot_seq

    seqs, models = [], []
    for pool in (core_motifs, background_motifs):
        for _ in range(n // 2):
            m = generate_model(pool, length)
            seqs.append(simulate_sequence(m))
            models.append(m)
    cum_index = np.cumsum(np.multiply([0, 0.7, 0.1, 0.2], n)).astype(int)
    shuffle = np.random.permutation(n)
    return np.array(seqs), np.array(models), shuffle, cum_index


def test_matches_the_notebook_draw_for_draw():
    n, length, seed = 60, 200, 22
    X_ref, pwm_ref, shuffle, cum = _notebook_reference(n, length, seed)
    code = dna.generate_synthetic_code(n=n, length=length, seed=seed)
    assert np.array_equal(code.X, X_ref.astype(np.float32))
    assert np.array_equal(code.pwm, pwm_ref.astype(np.float32))
    assert np.array_equal(code.train_idx, shuffle[cum[0]:cum[1]])
    assert np.array_equal(code.valid_idx, shuffle[cum[1]:cum[2]])
    assert np.array_equal(code.test_idx, shuffle[cum[2]:cum[3]])


def test_motif_count_distribution():
    rng = np.random.RandomState(0)
    lengths = np.full(10, 10)  # short motifs: no resampling bias from the length constraint
    cum = np.cumsum(dna.MOTIF_COUNT_WEIGHTS)
    counts = np.array([len(dna._grammar(rng, lengths, cum, 200)[0]) for _ in range(6000)])
    freq = {k: np.mean(counts == k) for k in range(3, 8)}
    assert set(np.unique(counts)) <= set(range(3, 8))
    for k, p in {3: .50, 4: .25, 5: .17, 6: .05, 7: .03}.items():
        assert abs(freq[k] - p) < 0.025, (k, freq[k], p)


def test_grammar_counts_in_generated_data(code):
    counts = np.array([len(p) for p in code.planted])
    assert counts.min() >= 3 and counts.max() <= 7
    assert 0.40 < np.mean(counts == 3) < 0.60


def test_pwm_columns_gaps_and_information_content(code, ds):
    pwm = code.pwm
    np.testing.assert_allclose(pwm.sum(axis=1), 1.0, atol=1e-5)
    ic = ds.ground_truth.information_content()
    motif_cols, informative = 0, 0
    for i in range(N):
        mask = np.zeros(200, dtype=bool)
        prev = 0
        for s in code.planted[i]:
            assert s.start >= prev and s.end > s.start
            mask[s.start:s.end] = True
            prev = s.end
        gaps = pwm[i][:, ~mask]
        assert np.all(gaps == np.float32(0.25))  # gap columns exactly uniform
        assert np.all(np.abs(ic[i, ~mask]) < 1e-6)  # and carry no information
        assert not np.any((ic[i] > 0.1) & ~mask)  # information > 0.1 only inside motifs
        motif_cols += mask.sum()
        informative += (ic[i, mask] > 0.1).sum()
    assert informative / motif_cols > 0.7  # most motif columns are informative


def test_sampled_nucleotides_follow_the_pwm(code):
    conf = code.pwm.max(axis=1) > 0.9  # (N, L)
    hit = code.X.argmax(axis=1) == code.pwm.argmax(axis=1)
    assert conf.sum() > 1000
    assert hit[conf].mean() > 0.9
    gap = np.all(code.pwm == np.float32(0.25), axis=1)
    comp = code.X.transpose(0, 2, 1)[gap].mean(axis=0)  # nucleotide composition in gaps
    np.testing.assert_allclose(comp, 0.25, atol=0.02)


def test_positives_core_only_negatives_background(code):
    core_ids = set(dna.CORE_MOTIF_IDS)
    bg_ids = {m.matrix_id for m in code.background}
    pos = [s for i in range(N // 2) for s in code.planted[i]]
    neg = [s for i in range(N // 2, N) for s in code.planted[i]]
    assert {s.matrix_id for s in pos} == core_ids
    assert {s.strand for s in pos} == {"+", "-"}
    neg_ids = {s.matrix_id for s in neg}
    assert neg_ids <= bg_ids and len(neg_ids - core_ids) > 30
    frac_core = np.mean([s.matrix_id in core_ids for s in neg])
    assert 0.03 < frac_core < 0.2  # 10 of 110 PWMs


def test_planted_motifs_recovered_from_the_pwm(code, ds):
    for i in list(range(0, N, 7)) + [N // 2 - 1, N // 2, N - 1]:
        assert dna.planted_motifs(ds, i) == code.planted[i]


# -- dataset ------------------------------------------------------------------------------------------
def test_dataset_layout_and_split(ds):
    assert ds.modality == "sequence" and ds.input_shape == (4, 200)
    assert ds.n_classes == 2 and ds.class_names[1].startswith("core")
    assert ds.feature_names[:2] == ["pos0", "pos1"] and len(ds.feature_names) == 200
    assert ds.ground_truth.strength == "exact" and ds.ground_truth.pwm.dtype == np.float32
    p = ds.params
    assert (p["n_train"], p["n_valid"], p["n_test"]) == (420, 60, 120)
    assert len(ds.train_idx) == 480 and len(ds.test_idx) == 120
    all_idx = np.concatenate([ds.train_idx, ds.test_idx])
    assert np.array_equal(np.sort(all_idx), np.arange(N))
    assert not np.all(np.diff(ds.train_idx) > 0)  # permutation order, not sorted
    valid = ds.train_idx[-p["n_valid"]:]
    assert len(set(valid) & set(ds.train_idx[:-p["n_valid"]])) == 0
    assert len(p["background_motif_ids"]) == 50


def test_paper_split_sizes():
    cum = np.cumsum(np.multiply([0, *dna.SPLIT], 20000)).astype(int)
    assert list(np.diff(cum)) == [14000, 2000, 4000]


def test_save_load_round_trip(ds, tmp_path):
    ds.save(tmp_path / "dna")
    back = Dataset.load(tmp_path / "dna")
    assert back.fingerprint() == ds.fingerprint()
    assert np.array_equal(back.ground_truth.pwm, ds.ground_truth.pwm)
    assert np.array_equal(back.train_idx, ds.train_idx)
    assert back.params == ds.params and back.class_names == ds.class_names
    assert dna.planted_motifs(back, 3) == dna.planted_motifs(ds, 3)


def test_registered():
    from xai_core.data import DATASETS

    paper, small = DATASETS.get("dna-motifs"), DATASETS.get("dna-motifs-small")
    assert paper.size == "paper" and paper.params["n"] == 20000 and paper.params["seed"] == 22
    assert small.size == "small" and small.params["n"] == 4000
    assert paper.default_arch == "dna_deep"
    assert small.default_arch == "dna_shallow"  # the shipped small model: shallow net, reverse-complement augmented
    assert paper.params["length"] == small.params["length"] == 200
    ds = small.builder(name="dna-motifs-small", **{**small.params, "n": 100})
    assert ds.name == "dna-motifs-small" and len(ds) == 100
