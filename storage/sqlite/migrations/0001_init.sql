-- Two generic tables in the shape of Prosody's mod_storage_sql.
--
-- kv holds KeyVal and Map stores: a KeyVal value is the row with key ''.
-- "type" is reserved for a codec hint; values are opaque bytes.
CREATE TABLE kv (
	host    TEXT NOT NULL,
	"user"  TEXT NOT NULL,
	store   TEXT NOT NULL,
	"key"   TEXT NOT NULL,
	"type"  TEXT NOT NULL DEFAULT '',
	value   BLOB NOT NULL,
	PRIMARY KEY (host, "user", store, "key")
) WITHOUT ROWID, STRICT;

-- KeyVal.Users, Map.GetAll and Map.DeleteAll look up one key across users.
CREATE INDEX kv_store_key ON kv (host, store, "key", "user");

-- archive holds Archive stores. sort_id is the archive order; "key" is the
-- item id; "when" is Unix milliseconds.
CREATE TABLE archive (
	sort_id INTEGER PRIMARY KEY AUTOINCREMENT,
	host    TEXT NOT NULL,
	"user"  TEXT NOT NULL,
	store   TEXT NOT NULL,
	"key"   TEXT NOT NULL,
	"when"  INTEGER NOT NULL,
	"with"  TEXT NOT NULL,
	"type"  TEXT NOT NULL,
	value   BLOB NOT NULL
) STRICT;

-- One item per id (an Append with an existing id replaces the item).
CREATE UNIQUE INDEX archive_key ON archive (host, "user", store, "key");

-- Queries are answered in archive order (ORDER BY sort_id with Limit,
-- Reverse and Before/After cursors as sort_id bounds), so each index ends
-- with sort_id (implicit in SQLite, where sort_id is the rowid):
--   no filter or IDs          archive_sort, read in order, stops at Limit
--   With (and Start/End)      archive_with, read in order, stops at Limit
--   Start/End without With    archive_when range, then sorted
CREATE INDEX archive_sort ON archive (host, "user", store, sort_id);
CREATE INDEX archive_with ON archive (host, "user", store, "with", sort_id);
CREATE INDEX archive_when ON archive (host, "user", store, "when");
