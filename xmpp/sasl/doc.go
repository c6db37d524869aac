// Package sasl is the server side of XMPP SASL authentication (RFC 6120 §6):
// the SCRAM family (RFC 5802, RFC 7677: SCRAM-SHA-1, SCRAM-SHA-256,
// SCRAM-SHA-512 and their -PLUS channel-binding variants) and PLAIN
// (RFC 4616).
//
// A Config describes one stream: the credential Backend, whether the stream
// is TLS-protected, which channel bindings the TLS layer can provide
// (tls-exporter, RFC 9266; tls-server-end-point, RFC 5929) and which
// mechanisms policy allows. Config.Offered and Config.CBTypes give what to
// advertise in <mechanisms/> and in the XEP-0440 <sasl-channel-binding/>
// element; Config.NewServer starts one exchange, driven by Server.Step with
// the base64-decoded payload of each <auth/> or <response/>. Every failure is
// a *Failure whose Condition is the RFC 6120 §6.5 condition to send.
//
// Passwords are never needed at login for SCRAM: the Backend returns the
// stored StoredKey/ServerKey pair (see Derive), so a login costs a handful of
// HMACs and no PBKDF2. For unknown users SCRAM runs a fake exchange with a
// deterministic per-user fake salt, so the server-first-message and the final
// failure look the same as for a wrong password (RFC 5802 §9). When
// Config.Downgrade is set the server-first-message carries the XEP-0474
// downgrade protection hash of the advertised mechanisms and channel-binding
// types.
//
// Strings are prepared with PRECIS (RFC 8265): passwords with OpaqueString
// (the successor of SASLprep), usernames with UsernameCaseMapped, and
// Server.Username returns the canonical form.
//
// # Why not github.com/xdg-go/scram
//
// The module already depends on xdg-go/scram (v1.4.0), and its client is used
// by this package's tests for interoperability. Its server side cannot be used
// here because:
//   - a conversation is bound to a single channel-binding type and data, while
//     the server must accept whichever advertised type (tls-exporter or
//     tls-server-end-point) the client picks in its gs2 header;
//   - the server-first-message cannot carry extension attributes, so the
//     XEP-0474 downgrade-protection hash cannot be sent;
//   - credential lookup takes no context, and an unknown user aborts the
//     exchange at the first step (revealing whether the account exists)
//     instead of running a fake exchange;
//   - failures are strings, not RFC 6120 conditions, and locked accounts
//     cannot be told apart.
//
// SCRAM is therefore implemented here directly with crypto/hmac and
// crypto/pbkdf2; it is small and is checked against the RFC 5802, RFC 7677
// and XEP-0474 example exchanges and against the xdg-go/scram client.
package sasl
