// Package config loads and validates metronome's TOML configuration
// (ARCHITECTURE.md §2.8).
//
// The file has a static part, decoded into typed structs with defaults
// applied ([server], [storage], [listen], [tls], [c2s], [modules] enabled,
// [host."<name>"] tls and modules, [component."<name>"] module), and module
// option tables ([modules.<name>], [host."<name>".<name>],
// [component."<name>".<module>]) that are kept as trees and decoded later by
// each module into its own struct with Config.DecodeModule. testdata/full.toml
// documents every key.
//
// # Errors
//
// Everything is strict: an unknown or misplaced key, a value of the wrong
// type, a bad duration, size, enum, listen address, host name or admin JID
// is an *Error carrying file and line, naming the section or module:
//
//	metronome.toml:12: unknown key "foo" in [server]
//	metronome.toml:31: module "ping" on host "example.org": unknown option "intervall" (did you mean "interval"?)
//
// All problems found in one pass are returned together with errors.Join,
// sorted by line. Syntax errors stop at the first one.
//
// # Module options and inheritance
//
// The options of a module on a host are the global [modules.<name>] table
// overlaid key by key by [host."<host>".<name>]: tables are merged
// recursively, every other value (arrays included) replaces the global one.
// The merged tree is converted to JSON (the canonical form the admin API will
// serve) and decoded with encoding/json and DisallowUnknownFields; a
// reflective pass over the destination type first finds unknown options and
// type mismatches so that each is reported at its own line. Module structs
// can use Duration and Size for "5m" and "50MB" values.
//
// The modules enabled on a host are [modules] enabled (DefaultModules when
// absent), plus the host's modules.enable, minus its modules.disable.
//
// # Units
//
// Durations are strings parsed by ParseDuration: a sequence of numbers with
// units ms, s, m, h, d (24 h), w (7 d), e.g. "30s", "1h30m", "30d". Sizes
// are strings parsed by ParseSize: B, KB, MB, GB (powers of 1000) and KiB,
// MiB, GiB (powers of 1024), e.g. "256KB", "1MiB"; a bare TOML integer is a
// number of bytes.
//
// # Paths
//
// server.data_dir is relative to the process's working directory. Every
// other relative path written in the file (server.pidfile,
// server.admin_socket, storage.sqlite.path, tls cert and key) is relative to
// the directory of the configuration file, so a config can sit next to its
// certificates. Paths left empty default to files in data_dir:
// <data_dir>/metronome.pid, <data_dir>/admin.sock, <data_dir>/metronome.db,
// and self-signed certificates under <data_dir>/certs (Config.CertDir).
//
// # Hosts and components
//
// Host and component names are lowercased and must be DNS names with at
// least two labels ("localhost" excepted); duplicates after lowercasing are
// errors. A file without any [host."..."] section serves "localhost", like
// Default. A component names its module with module = "..." and keeps its
// options in a table of that name; when module is absent, the component's
// single table names it (external = { ... } means module "external").
// modules = [...] loads more modules on the component's host after it
// (extensions hooking its events); their options come from [modules.<name>].
//
// Find locates the file: an explicit path, else ./metronome.toml, else
// /etc/metronome/metronome.toml, else none (use Default).
package config
