package prefetch

import (
	"testing"
	"unsafe"
)

// TestLineNeverFaults: a prefetch of any address, mapped or not, returns
// and changes nothing.
func TestLineNeverFaults(t *testing.T) {
	buf := make([]byte, 256)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, a := range []uintptr{0, 1, 1 << 46, ^uintptr(0) &^ 63, uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&buf[200]))} {
		Line(a)
	}
	for i := range buf {
		if buf[i] != byte(i) {
			t.Fatalf("byte %d changed to %d", i, buf[i])
		}
	}
}

func BenchmarkLine(b *testing.B) {
	buf := make([]byte, 1<<20)
	base := uintptr(unsafe.Pointer(&buf[0]))
	for i := 0; b.Loop(); i++ {
		Line(base + uintptr(i*64)&(1<<20-1))
	}
}
