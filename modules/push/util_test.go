package push_test

import (
	"strings"
	"time"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func sleep() { time.Sleep(10 * time.Millisecond) }
