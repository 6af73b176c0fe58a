from indexer.params import LogParams
from indexer.querylog import read_query_log
from indexer.synthetic import generate_log


def test_the_same_seed_writes_the_same_log_and_another_seed_another(tmp_path):
    a = generate_log(tmp_path / "a.tsv", n_users=20, seed=3).read_text()
    b = generate_log(tmp_path / "b.tsv", n_users=20, seed=3).read_text()
    c = generate_log(tmp_path / "c.tsv", n_users=20, seed=4).read_text()
    assert a == b and a != c


def test_a_gz_suffix_writes_gzip_that_reads_like_the_plain_file(tmp_path):
    plain = read_query_log(generate_log(tmp_path / "a.tsv", n_users=20, seed=3), LogParams())
    packed = read_query_log(generate_log(tmp_path / "a.tsv.gz", n_users=20, seed=3), LogParams())
    assert packed.sessions == plain.sessions


def test_the_log_reads_cleanly_into_every_split_with_refinements(tmp_path):
    log = read_query_log(generate_log(tmp_path / "s.tsv", n_users=60, seed=1), LogParams())
    assert sum(log.stats.malformed.values()) == 0
    assert all(len(log.pairs(split)) > 0 for split in ("train", "valid", "test"))
    pairs = log.pairs("train")
    refinements = sum(nxt.startswith(prev + " ") for prev, nxt in zip(pairs.previous, pairs.next))
    assert refinements > len(pairs) * 0.1


def test_topics_share_prefixes_so_context_matters(tmp_path):
    log = read_query_log(generate_log(tmp_path / "s.tsv", n_users=60, seed=1), LogParams())
    following = {}
    pairs = log.pairs("train")
    for prev, nxt in zip(pairs.previous, pairs.next):
        if nxt.startswith("ro"):
            following.setdefault(prev, set()).add(nxt)
    after_gardening = following.get("house plants", set())
    after_music = following.get("guitar chords", set())
    assert any(q.startswith("rose") for q in after_gardening) or any(
        q.startswith("rock") for q in after_music
    )
