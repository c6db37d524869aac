// Package plugins holds example Metronome plugins, each a main package
// built for WebAssembly with the SDK (package sdk):
//
//   - motd: a message of the day sent to every client at login;
//   - wordfilter: censors or rejects listed words in group chat messages,
//     with a per-room switch in the MUC room configuration form;
//   - welcome: a welcome message for every newly registered account.
//
// go generate builds each into <name>/plugin.wasm beside its plugin.toml;
// `metronomectl repo add` can also build them from their folders. The
// end-to-end test in this folder builds and signs a repository of them,
// serves it over HTTP and installs, updates, rolls back and removes them
// on a running server.
package plugins

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o motd/plugin.wasm ./motd
//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o wordfilter/plugin.wasm ./wordfilter
//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o welcome/plugin.wasm ./welcome
