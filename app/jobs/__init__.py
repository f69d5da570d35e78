"""Long admin work (retrain, reindex) queued in the database and run off the request path.

`store` keeps the `jobs` rows, `worker` is the one thread per app that runs
them, `runners` says which function does each kind of job (`retrain` and
`training_data` are the retrain's), and `service` ties them together for the
app's lifespan and the admin API.
"""
