"""Consistency-based model selection: Pareto front, the selection rule, cross-model agreement, the
population registry, and one real tiny population trained and scored end to end."""
import numpy as np
import pandas as pd
import pytest

from xai_core import selection as sel


def _points():
    return pd.DataFrame({"member": list("ABCDEFG"),
                         "acc": [90.0, 80.0, 85.0, 90.0, 70.0, np.nan, 89.5],
                         "cons": [0.5, 0.9, 0.4, 0.5, 0.9, 1.0, 0.7]})


def test_pareto_front_hand_case_with_ties_dominated_and_missing_points():
    front = sel.pareto_front(_points(), "acc", "cons")
    # C is beaten by A on both axes, E by B (same consistency, lower accuracy), F has no accuracy;
    # A and D are identical: neither dominates the other, both stay.
    assert list(front["member"]) == ["B", "G", "A", "D"]
    lower_is_better = sel.pareto_front(_points(), "acc", "cons", maximise=(True, False))
    assert list(lower_is_better["member"]) == ["C", "A", "D"]  # A beats G and B when consistency is minimised
    assert sel.pareto_front(_points().iloc[:0], "acc", "cons").empty


def test_select_model_takes_the_most_consistent_front_member_near_the_best_accuracy():
    df = _points()
    assert sel.select_model(df, "acc", "cons", tolerance=1.0)["member"] == "G"  # 89.5 is within 1 point of 90
    assert sel.select_model(df, "acc", "cons", tolerance=0.0)["member"] == "A"  # tie A = D: the first listed
    assert sel.select_model(df, "acc", "cons", tolerance=20.0)["member"] == "B"
    assert sel.select_model(df.assign(cons=np.nan), "acc", "cons") is None


def test_cross_model_agreement_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 4, 30))
    np.testing.assert_allclose(sel.agreement_matrix([a, a]), np.ones((2, 2)), atol=1e-12)
    np.testing.assert_allclose(sel.cross_model_agreement([a, a, -a]), [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(sel.agreement_matrix([a, -a])[0, 1], -1.0, atol=1e-12)
    # equals the mean per-sample scipy Spearman correlation; a monotone transform does not change it
    from scipy.stats import spearmanr

    b = rng.normal(size=a.shape)
    want = np.mean([spearmanr(a[i].ravel(), b[i].ravel())[0] for i in range(len(a))])
    np.testing.assert_allclose(sel.agreement_matrix([a, b])[0, 1], want, atol=1e-12)
    np.testing.assert_allclose(sel.agreement_matrix([a, np.exp(a)]), np.ones((2, 2)), atol=1e-12)
    assert np.isnan(sel.cross_model_agreement([a])).all()


def test_population_registry_sizes_and_names(pop_cache):
    from dashboard.training import trained_checkpoints

    for modality in ("sequence", "expression", "image"):
        quick, full = sel.population(modality, "quick"), sel.population(modality, "full")
        assert 6 <= len(quick) <= 8 < len(full)
        for pop in (quick, full):
            assert len({m.name for m in pop}) == len(pop)
        custom = sel.population(modality, "quick", members=2, epochs=1)
        assert len(custom) == 2 and all(m.epochs == 1 for m in custom)
    dna = sel.population("sequence", "quick")
    acts = {m.arch_kwargs.get("activation") for m in dna}
    assert acts == {"relu", "exponential"} and {m.arch for m in dna} == {"dna_deep", "dna_shallow"}
    assert {m.arch_kwargs.get("activation") for m in dna[:2]} == {"relu", "exponential"}
    path = dna[0].path("dna-motifs-small")
    assert path.parent == pop_cache / "app_models" and path.name.startswith("dna-motifs-small__pop-")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert trained_checkpoints("dna-motifs-small") == [path]  # the sidebar's model picker lists members
    with pytest.raises(Exception, match="population size"):
        sel.population("sequence", "huge")


def test_tiny_dna_population_trained_and_scored_end_to_end(pop_cache, tmp_path):
    from xai_core.models.checkpoints import read_metadata
    from xai_core.store import ResultStore

    store = ResultStore(tmp_path / "results.sqlite")
    members = sel.population("sequence", "quick", members=2, epochs=1)
    seen = []
    paths = sel.train_population("dna-motifs-small", members, progress=lambda f, t: seen.append(f))
    assert all(p.exists() for p in paths) and seen[-1] == 1.0 and seen == sorted(seen)
    assert read_metadata(paths[0])["arch_kwargs"] == members[0].arch_kwargs
    stamps = [p.stat().st_mtime_ns for p in paths]
    sel.train_population("dna-motifs-small", members)  # already trained: skipped
    assert [p.stat().st_mtime_ns for p in paths] == stamps

    assert sel.load_scores("dna-motifs-small", members, "saliency", 8, 0, store) is None
    res = sel.score_population("dna-motifs-small", members, store, method="saliency", n=8)
    t = res.table
    assert list(t["member"]) == [m.name for m in members]
    assert res.interpretability == ["motif_auroc", "motif_snr"]
    assert res.consistency == ["kmer_kld", "spherical_kld", "agreement"]
    assert t["accuracy"].between(0, 100).all() and t["auroc"].between(0, 100).all()
    assert np.isfinite(t[["motif_auroc", "kmer_kld", "agreement"]].to_numpy(dtype=float)).all()
    assert res.agreement.shape == (2, 2) and np.allclose(np.diag(res.agreement), 1)
    assert (t["n_samples"] == 8).all()
    stored = store.scores_frame(dataset="dna-motifs-small", methods=["saliency"])
    assert set(t["checkpoint_hash"]) <= set(stored["model_hash"])
    again = sel.load_scores("dna-motifs-small", members, "saliency", 8, 0, store)
    pd.testing.assert_frame_equal(again.table, t, check_dtype=False)
    assert sel.select_model(t, "accuracy", "kmer_kld", tolerance=100.0) is not None
