from studio.dburl import database_from_url


def test_postgres_connections_persist_without_a_pool(monkeypatch):
    monkeypatch.delenv("DATABASE_POOL", raising=False)
    db = database_from_url("postgres://u@h:5432/studio")
    assert db["CONN_MAX_AGE"] == 60
    assert "pool" not in db["OPTIONS"]


def test_database_pool_turns_on_pooling(monkeypatch):
    monkeypatch.setenv("DATABASE_POOL", "true")
    monkeypatch.setenv("DATABASE_POOL_MAX", "8")
    db = database_from_url("postgres://u@h:5432/studio?sslmode=disable")
    assert db["CONN_MAX_AGE"] == 0  # Django refuses persistent connections with a pool
    assert db["OPTIONS"] == {"pool": {"min_size": 2, "max_size": 8}, "sslmode": "disable"}
