package striped

import (
	"sync"
	"testing"
)

func TestCounterSumsConcurrentAdds(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				c.Inc()
			}
			c.Add(5)
		}()
	}
	wg.Wait()
	if got := c.Load(); got != 8*10000+8*5 {
		t.Fatalf("Load = %d, want %d", got, 8*10000+8*5)
	}
}

// Next's (slot, count) pairs never repeat, and they add to the total.
func TestNextIsUnique(t *testing.T) {
	var c Counter
	seen := map[[2]uint64]bool{}
	for i := 0; i < 10000; i++ {
		slot, n := c.Next()
		k := [2]uint64{uint64(slot), n}
		if slot < 0 || slot >= slots || n == 0 || seen[k] {
			t.Fatalf("Next gave (%d, %d) at call %d", slot, n, i)
		}
		seen[k] = true
	}
	if c.Load() != 10000 {
		t.Fatalf("Load = %d after 10000 Next, want 10000", c.Load())
	}
}
