from indexer.params import LogParams
from indexer.querylog import read_query_log
from indexer.synthetic import TOPICS, generate_log


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


def test_topics_share_prefixes_so_the_previous_query_decides_the_completion(tmp_path):
    log = read_query_log(generate_log(tmp_path / "s.tsv", n_users=300, seed=1), LogParams())
    pairs = log.pairs("train")
    gardening, music = set(TOPICS["gardening"][0]), set(TOPICS["music"][0])
    after_gardening = [n for p, n in zip(pairs.previous, pairs.next) if p in gardening and n.startswith("ro")]
    after_music = [n for p, n in zip(pairs.previous, pairs.next) if p in music and n.startswith("ro")]
    assert after_gardening and after_music
    assert sum(n.startswith("ros") for n in after_gardening) > len(after_gardening) / 2
    assert sum(n.startswith(("rock", "roll", "rose royce")) for n in after_music) > len(after_music) / 2
