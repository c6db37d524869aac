//go:build !linux

package c2s

import "errors"

// poller is the epoll poller of idle sessions (poll_linux.go); elsewhere
// there is none, and each bound session reads on a goroutine of its own.
type poller struct{}

func idlePoller() *poller { return nil }

var (
	errParkedElsewhere = errors.New("c2s: session taken over while parking")
	errReadable        = errors.New("c2s: input arrived while parking")
)

func (*poller) park(*Session) error { return errors.New("c2s: no poller") }

func (*poller) wake(*Session) {}

func (*poller) forget(*Session) {}
