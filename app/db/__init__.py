"""Storage: the SQL database that is Lineup's source of truth.

`tables` declares the schema, `engine` opens connections and sessions,
`migrate` brings a database to the schema with Alembic, `vectors` packs
embeddings into bytes for their rows.
"""
