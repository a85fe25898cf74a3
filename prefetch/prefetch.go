// Package prefetch asks the CPU to start loading memory that will be read
// soon, so that several cache (and TLB) misses overlap instead of waiting
// one after another. Go has no prefetch built-in; Line is one instruction
// in assembly on amd64 and arm64 and does nothing elsewhere.
//
// A prefetch never faults and changes nothing a program can observe, so
// any address may be passed, even a stale one.
package prefetch
