package httpd

import (
	"html/template"
	"net/http"
	"time"

	"github.com/metronome-xmpp/metronome/internal/admin"
	"github.com/metronome-xmpp/metronome/internal/metrics"
)

// statusPage is the operators' status page: plain HTML, no script.
var statusPage = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Metronome status</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { font-size: 90%; }
</style>
</head>
<body>
<h1>Metronome</h1>
<table>
<tr><th>Version</th><td>{{.Status.Version}}</td></tr>
<tr><th>Started</th><td>{{.Status.Started.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><th>Uptime</th><td>{{.Uptime}}</td></tr>
<tr><th>Sessions</th><td>{{.Status.Sessions}}</td></tr>
<tr><th>Authentication failures</th><td>{{.Metrics.AuthFailures}}</td></tr>
</table>
<h2>Hosts</h2>
<table>
<tr><th>Host</th><th>Sessions</th><th>Modules</th></tr>
{{range .Status.Hosts}}<tr><td>{{.Name}}</td><td>{{.Sessions}}</td><td>{{range $i, $m := .Modules}}{{if $i}}, {{end}}<code>{{$m}}</code>{{end}}</td></tr>
{{end}}</table>
<h2>Sessions by transport</h2>
<table>
<tr><th>Transport</th><th>Now</th><th>Since start</th></tr>
{{range $t, $n := .Metrics.Sessions}}<tr><td>{{$t}}</td><td>{{$n}}</td><td>{{index $.Metrics.SessionsOpened $t}}</td></tr>
{{end}}</table>
</body>
</html>
`))

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	o := s.ops.Load()
	if o == nil {
		http.Error(w, "the server is starting", http.StatusServiceUnavailable)
		return
	}
	st := o.Status()
	data := struct {
		Status  admin.Status
		Metrics metrics.Snapshot
		Uptime  time.Duration
	}{st, metrics.Take(), time.Since(st.Started).Round(time.Second)}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := statusPage.Execute(w, data); err != nil {
		s.log.Debug("status page not sent", "err", err)
	}
}
