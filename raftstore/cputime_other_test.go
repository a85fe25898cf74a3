//go:build !unix

package raftstore

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
