package bosh

import (
	"errors"
	"strconv"
	"strings"

	"github.com/metronome-xmpp/metronome/xmpp/stanza"
	"github.com/metronome-xmpp/metronome/xmpp/stream"
	"github.com/metronome-xmpp/metronome/xmpp/xmlstream"
)

// Namespaces and versions.
const (
	// NS is the namespace of the <body/> wrapper (XEP-0124).
	NS = "http://jabber.org/protocol/httpbind"
	// NSXBOSH qualifies the XMPP attributes of XEP-0206 (xmpp:version,
	// xmpp:restart, xmpp:restartlogic).
	NSXBOSH = "urn:xmpp:xbosh"
	// Version is the XEP-0124 version implemented.
	Version = "1.11"
)

// maxRID is the largest 'rid' a client may use: XEP-0124 §14.1 keeps
// rids below 2^53 so that JavaScript clients can count them exactly.
const maxRID = 1<<53 - 1

// errBadRequest is a <body/> that cannot be accepted (XEP-0124
// bad-request): not XML, not a body, or a malformed attribute.
var errBadRequest = errors.New("bosh: bad request")

// body is a parsed client request.
type body struct {
	rid     uint64
	sid     string
	to      string
	from    string
	lang    string
	ver     string
	content string
	typ     string // "" or "terminate"
	// §15.3 key sequencing.
	key, newkey string
	// XEP-0206
	xmppVersion string
	restart     bool
	// Numbers that are -1 when absent.
	wait, hold, pause int
	ack               int64
	// payload holds the children, serialized with jabber:client as the
	// default namespace (the way the c2s stream reads them).
	payload []byte
}

// parseBody parses one request. It accepts exactly one <body/> in the
// httpbind namespace, without character data of its own, with a valid
// 'rid'. The restricted XML rules (no DTD, comments, processing
// instructions) are xmlstream's.
func parseBody(b []byte) (*body, error) {
	el, err := xmlstream.Parse(b)
	if err != nil {
		return nil, errBadRequest
	}
	if el.Space != NS || el.Name != "body" {
		return nil, errBadRequest
	}
	req := &body{wait: -1, hold: -1, pause: -1, ack: -1}
	for _, a := range el.Attrs {
		switch {
		case a.Space == NSXBOSH && a.Name == "version":
			req.xmppVersion = a.Value
		case a.Space == NSXBOSH && a.Name == "restart":
			req.restart = a.Value == "true" || a.Value == "1"
		case a.Space != "":
		case a.Name == "rid":
			req.rid, err = strconv.ParseUint(a.Value, 10, 64)
			if err != nil || req.rid == 0 || req.rid > maxRID {
				return nil, errBadRequest
			}
		case a.Name == "sid":
			req.sid = a.Value
		case a.Name == "to":
			req.to = a.Value
		case a.Name == "from":
			req.from = a.Value
		case a.Name == "xml:lang":
			req.lang = a.Value
		case a.Name == "ver":
			req.ver = a.Value
		case a.Name == "content":
			req.content = a.Value
		case a.Name == "type":
			req.typ = a.Value
		case a.Name == "key":
			req.key = a.Value
		case a.Name == "newkey":
			req.newkey = a.Value
		case a.Name == "wait":
			if req.wait, err = smallInt(a.Value); err != nil {
				return nil, err
			}
		case a.Name == "hold":
			if req.hold, err = smallInt(a.Value); err != nil {
				return nil, err
			}
		case a.Name == "pause":
			if req.pause, err = smallInt(a.Value); err != nil {
				return nil, err
			}
		case a.Name == "ack":
			v, err := strconv.ParseUint(a.Value, 10, 64)
			if err != nil || v > maxRID {
				return nil, errBadRequest
			}
			req.ack = int64(v)
		}
	}
	if req.rid == 0 {
		return nil, errBadRequest
	}
	for _, c := range el.Children {
		if c.El == nil {
			// §4: the wrapper MUST NOT contain character data.
			if strings.TrimLeft(c.Text, " \t\r\n") != "" {
				return nil, errBadRequest
			}
			continue
		}
		// Payloads that did not declare a namespace inherited the
		// wrapper's: they are meant as jabber:client stanzas.
		unwrapNS(c.El)
		req.payload = c.El.Append(req.payload, stanza.NSClient)
	}
	return req, nil
}

// smallInt parses a non-negative number of seconds or requests.
func smallInt(s string) (int, error) {
	v, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, errBadRequest
	}
	return int(v), nil
}

// unwrapNS moves el and its descendants out of the httpbind namespace.
func unwrapNS(el *stanza.Element) {
	if el.Space != NS {
		return
	}
	el.Space = stanza.NSClient
	for _, c := range el.Children {
		if c.El != nil {
			unwrapNS(c.El)
		}
	}
}

// versionAtMost returns the lower of the client's 'ver' and ours
// (XEP-0124 §7.1: each part compared as an integer).
func versionAtMost(client string) string {
	cmaj, cmin, ok := splitVersion(client)
	if !ok {
		return Version
	}
	smaj, smin, _ := splitVersion(Version)
	if cmaj < smaj || cmaj == smaj && cmin < smin {
		return strconv.Itoa(cmaj) + "." + strconv.Itoa(cmin)
	}
	return Version
}

func splitVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	return int(x), int(y), err1 == nil && err2 == nil
}

// Terminal binding conditions (XEP-0124 §17.2).
const (
	condBadRequest         = "bad-request"
	condHostUnknown        = "host-unknown"
	condImproperAddressing = "improper-addressing"
	condItemNotFound       = "item-not-found"
	condPolicyViolation    = "policy-violation"
	condRemoteConnFailed   = "remote-connection-failed"
	condRemoteStreamError  = "remote-stream-error"
	condSystemShutdown     = "system-shutdown"
	condUndefined          = "undefined-condition"
)

// legacyStatus is the HTTP status that replaces a condition for clients
// that sent no 'ver' (XEP-0124 §17.1); 0 means 200 with the body.
func legacyStatus(cond string) int {
	switch cond {
	case condBadRequest:
		return 400
	case condPolicyViolation:
		return 403
	case condItemNotFound:
		return 404
	}
	return 0
}

// openBody starts a response <body> with the namespaces every response
// declares (XEP-0206 §3: stream features need the stream: prefix).
func openBody(buf []byte) []byte {
	return append(buf, `<body xmlns="`+NS+`" xmlns:stream="`+stream.NS+`"`...)
}

// appendAttr appends ` name="value"`.
func appendAttr(buf []byte, name, value string) []byte {
	buf = append(buf, ' ')
	buf = append(buf, name...)
	buf = append(buf, `="`...)
	buf = stanza.AppendEscaped(buf, value, true)
	return append(buf, '"')
}

// closeBody ends a response with its payloads.
func closeBody(buf, payload []byte) []byte {
	if len(payload) == 0 {
		return append(buf, "/>"...)
	}
	buf = append(buf, '>')
	buf = append(buf, payload...)
	return append(buf, "</body>"...)
}

// terminateBody is a terminal binding error (or, with cond "", the end
// of the session) carrying payload.
func terminateBody(cond string, payload []byte) []byte {
	b := openBody(nil)
	b = appendAttr(b, "type", "terminate")
	if cond != "" {
		b = appendAttr(b, "condition", cond)
	}
	return closeBody(b, payload)
}
