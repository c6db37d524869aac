//go:build !unix

package account

import "time"

func cpuTime() time.Duration { return 0 }
