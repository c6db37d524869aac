package httpd

import (
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/metronome-xmpp/metronome/internal/admin"
)

// The REST admin API. Every endpoint except the OpenAPI document needs
// "Authorization: Bearer <token>" with one of [http] api_tokens; answers
// are JSON, errors {"error": "..."}. The operations are internal/admin's,
// the same as the local admin socket's.

//go:embed openapi.json
var openAPIDoc []byte

// apiRoute is one endpoint of the admin API.
type apiRoute struct {
	method, path string
	handler      http.Handler
}

// APIEndpoints lists "METHOD path" of every admin API endpoint, in the
// OpenAPI document's notation, for tests and documentation.
func (s *Server) APIEndpoints() []string {
	var out []string
	for _, r := range s.apiRoutes() {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

func (s *Server) apiRoutes() []apiRoute {
	type fn = func(w http.ResponseWriter, r *http.Request, o *admin.Ops)
	auth := func(h fn) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(s.settings().tokens) == 0 {
				writeError(w, http.StatusForbidden, "the admin API is disabled: no [http] api_tokens are configured")
				return
			}
			if !s.validToken(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metronome"`)
				writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
				return
			}
			o := s.ops.Load()
			if o == nil {
				writeError(w, http.StatusServiceUnavailable, "the server is starting")
				return
			}
			h(w, r, o)
		})
	}
	return []apiRoute{
		{http.MethodGet, "/api/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(openAPIDoc)
		})},
		{http.MethodGet, "/api/status", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			writeJSON(w, http.StatusOK, o.Status())
		})},
		{http.MethodGet, "/api/stats", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			writeJSON(w, http.StatusOK, o.Stats())
		})},
		{http.MethodGet, "/api/users", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			users, err := o.ListUsers(r.Context(), r.URL.Query().Get("host"))
			s.reply(w, http.StatusOK, map[string][]string{"users": users}, err)
		})},
		{http.MethodPost, "/api/users", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			var a admin.UserArgs
			if !decodeBody(w, r, &a) {
				return
			}
			err := o.CreateUser(r.Context(), a)
			s.reply(w, http.StatusCreated, map[string]string{"jid": a.JID}, err)
		})},
		{http.MethodDelete, "/api/users/{jid}", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			err := o.DeleteUser(r.Context(), admin.UserArgs{JID: r.PathValue("jid")})
			s.reply(w, http.StatusNoContent, nil, err)
		})},
		{http.MethodPut, "/api/users/{jid}/password", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			var a struct {
				Password string `json:"password"`
			}
			if !decodeBody(w, r, &a) {
				return
			}
			err := o.SetPassword(r.Context(), admin.UserArgs{JID: r.PathValue("jid"), Password: a.Password})
			s.reply(w, http.StatusNoContent, nil, err)
		})},
		{http.MethodGet, "/api/sessions", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			ss, err := o.ListSessions(r.URL.Query().Get("host"))
			s.reply(w, http.StatusOK, map[string][]admin.SessionInfo{"sessions": ss}, err)
		})},
		{http.MethodDelete, "/api/sessions/{jid}", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			n, err := o.Kick(admin.KickArgs{JID: r.PathValue("jid"), Reason: r.URL.Query().Get("reason")})
			s.reply(w, http.StatusOK, map[string]int{"closed": n}, err)
		})},
		{http.MethodPost, "/api/messages", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			var m admin.Message
			if !decodeBody(w, r, &m) {
				return
			}
			id, err := o.SendMessage(r.Context(), m)
			s.reply(w, http.StatusAccepted, map[string]string{"id": id}, err)
		})},
		{http.MethodPost, "/api/announcements", auth(func(w http.ResponseWriter, r *http.Request, o *admin.Ops) {
			var a admin.Announcement
			if !decodeBody(w, r, &a) {
				return
			}
			n, err := o.Announce(r.Context(), a)
			s.reply(w, http.StatusOK, map[string]int{"sent": n}, err)
		})},
	}
}

// reply writes v with status ok, or the error's status and message.
func (s *Server) reply(w http.ResponseWriter, ok int, v any, err error) {
	if err == nil {
		if ok == http.StatusNoContent || v == nil {
			w.WriteHeader(ok)
			return
		}
		writeJSON(w, ok, v)
		return
	}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, admin.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, admin.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, admin.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, admin.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.log.Error("admin API operation failed", "err", err)
		msg = "internal server error" // never leak storage errors
	}
	writeError(w, code, msg)
}

// decodeBody strictly decodes a JSON request body, answering 400 or 413 on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
