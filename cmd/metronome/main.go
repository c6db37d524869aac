// Command metronome is the XMPP server daemon.
//
//	metronome [--config PATH]
//
// Without --config it uses ./metronome.toml, then
// /etc/metronome/metronome.toml, then built-in defaults: the host
// "localhost", SQLite under ./data, a self-signed certificate, and client
// listeners on 5222 (STARTTLS) and 5223 (direct TLS).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/metronome-xmpp/metronome/internal/app"
	"github.com/metronome-xmpp/metronome/internal/core"
	_ "github.com/metronome-xmpp/metronome/modules/standard"
)

func main() {
	configPath := flag.String("config", "", "configuration file (default: ./metronome.toml, /etc/metronome/metronome.toml, built-in defaults)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println("metronome", core.Version)
		return
	}
	startPprof()
	if err := app.Run(*configPath, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "metronome:", err)
		os.Exit(1)
	}
}
