-- Two generic tables in the shape of Prosody's mod_storage_sql.
-- Text columns use the "C" collation: byte order, like the other drivers,
-- and independent of the database's locale.
--
-- kv holds KeyVal and Map stores: a KeyVal value is the row with key ''.
-- "type" is reserved for a codec hint; values are opaque bytes.
CREATE TABLE kv (
	host    text COLLATE "C" NOT NULL,
	"user"  text COLLATE "C" NOT NULL,
	store   text COLLATE "C" NOT NULL,
	"key"   text COLLATE "C" NOT NULL,
	"type"  text NOT NULL DEFAULT '',
	value   bytea NOT NULL,
	PRIMARY KEY (host, "user", store, "key")
);

-- KeyVal.Users, Map.GetAll and Map.DeleteAll look up one key across users.
CREATE INDEX kv_store_key ON kv (host, store, "key", "user");

-- archive holds Archive stores. sort_id is the archive order; "key" is the
-- item id; "when" is Unix milliseconds (bigint, like the SQLite driver).
--
-- The primary key is (host, user, store, sort_id) rather than sort_id
-- alone: it is the index that pages in archive order, and a lone sort_id
-- index would tempt the planner to walk the whole table backwards for "the
-- newest 50 items" of a user, filtering out every other user's newer rows.
-- sort_id is unique anyway (one sequence).
CREATE TABLE archive (
	sort_id bigserial NOT NULL,
	host    text COLLATE "C" NOT NULL,
	"user"  text COLLATE "C" NOT NULL,
	store   text COLLATE "C" NOT NULL,
	"key"   text COLLATE "C" NOT NULL,
	"when"  bigint NOT NULL,
	"with"  text COLLATE "C" NOT NULL,
	"type"  text NOT NULL,
	value   bytea NOT NULL,
	PRIMARY KEY (host, "user", store, sort_id),
	UNIQUE (host, "user", store, "key")
);

-- Queries are answered in archive order (ORDER BY sort_id with Limit,
-- Reverse and Before/After cursors as sort_id bounds), so the indexes end
-- with sort_id:
--   no filter or IDs          the primary key, read in order, stops at Limit
--   With (and Start/End)      archive_with, read in order, stops at Limit
--   Start/End without With    archive_when range (or the primary key, as
--                             the planner sees fit)
CREATE INDEX archive_with ON archive (host, "user", store, "with", sort_id);
CREATE INDEX archive_when ON archive (host, "user", store, "when", sort_id);
