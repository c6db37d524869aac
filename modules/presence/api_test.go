package presence

import "github.com/metronome-xmpp/metronome/modules/roster"

// The roster module's published value must keep satisfying what this
// module type-asserts at Provision (a test-only import: modules never
// import each other in production code).
var _ rosterAPI = (*roster.Roster)(nil)
