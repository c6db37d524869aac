// Package plugin runs third-party plugins inside the server as WebAssembly
// modules and manages their installation (docs/design/002_plugins.md).
//
// Runtime: every installed plugin is registered as an ordinary module
// (ID "plugin.<name>") by Activate, which reads the lockfile; the core
// enables, configures, provisions and unloads it like any module. Its
// instance per host compiles the module with wazero (Engine; one runtime
// per module and memory cap, compiled code cached on disk) and runs it in
// a pool of guest instances. Calls have a deadline, instances a memory
// cap, and only the capabilities of the plugin's manifest work (events it
// may hook, stores, HTTP hosts, sending, rewriting); traps and timeouts
// are counted and disable the plugin until the next reload. The ABI is
// defined in package sdk/abi; the Go guest SDK is package sdk.
//
// Distribution: a repository is a static directory (index, manifests,
// modules, ed25519 signatures) served over HTTP(S) or read from a path
// (Fetcher, Catalog); RepoInit, RepoAdd, RepoBuild, RepoSign and
// RepoHandler create and serve one. Manager carries out `metronomectl
// plugin` commands: it picks the newest compatible version, verifies
// checksums and signatures against [plugins] trusted_keys, runs the plugin
// once in a sandbox (Check), writes it and the lockfile (Lock), and
// reloads the running server, undoing the change if the server refuses it.
//
// Not here: MUC room-configuration fields (waiting for the MUC module's
// events), archive stores, timers and HTTP routes for plugins.
package plugin
