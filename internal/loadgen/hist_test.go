package loadgen

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketRangeContainsValue(t *testing.T) {
	vals := []int64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 123456789, 1 << 40, math.MaxInt64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, rng.Int64N(1<<uint(rng.IntN(62)+1)))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, histBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d with range [%d, %d]", v, i, lo, hi)
		}
		if width := float64(hi - lo); width > float64(v)/subCount {
			t.Fatalf("bucket of %d is %v wide, more than 1/%d of the value", v, width, subCount)
		}
	}
}

// The quantiles of a histogram must match the exact quantiles of the
// sorted samples within the bucket precision.
func TestQuantilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	h := NewHistogram()
	var samples []int64
	for range 100000 {
		// log-normal-ish latencies between ~10µs and ~1s
		v := int64(math.Exp(rng.NormFloat64()*1.5+12)) + 1
		samples = append(samples, v)
		h.Record(time.Duration(v))
	}
	slices.Sort(samples)
	s := h.Snapshot()
	if s.Count != uint64(len(samples)) {
		t.Fatalf("count %d, want %d", s.Count, len(samples))
	}
	if s.Min != samples[0] || s.Max != samples[len(samples)-1] {
		t.Fatalf("min/max %d/%d, want %d/%d", s.Min, s.Max, samples[0], samples[len(samples)-1])
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := int64(s.Quantile(q))
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/subCount {
			t.Errorf("p%g = %d, exact %d (off by %.2f%%)", q*100, got, exact, rel*100)
		}
	}
	if s.Quantile(0) != time.Duration(samples[0]) || s.Quantile(1) != time.Duration(samples[len(samples)-1]) {
		t.Errorf("q0/q1 are not min/max")
	}
	var sum int64
	for _, v := range samples {
		sum += v
	}
	if s.Mean() != time.Duration(sum/int64(len(samples))) {
		t.Errorf("mean %v, want %v", s.Mean(), time.Duration(sum/int64(len(samples))))
	}
}

func TestEmptyHistogram(t *testing.T) {
	s := NewHistogram().Snapshot()
	if s.Count != 0 || s.Quantile(0.5) != 0 || s.Mean() != 0 || s.Min != 0 || s.Max != 0 {
		t.Fatalf("empty snapshot %+v", s)
	}
	if m := s.Merge(s); m.Count != 0 {
		t.Fatalf("merge of empties has count %d", m.Count)
	}
}

func TestNegativeRecordsAsZero(t *testing.T) {
	h := NewHistogram()
	h.Record(-5 * time.Millisecond)
	s := h.Snapshot()
	if s.Min != 0 || s.Max != 0 || s.Quantile(0.5) != 0 {
		t.Fatalf("negative sample: %+v", s)
	}
}

// Merging the snapshots of two halves (also through JSON, as children send
// them) equals the histogram of all samples.
func TestMergeEqualsWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	whole, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 50000 {
		d := time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
		whole.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var sa, sb HistSnapshot
	roundTrip(t, a.Snapshot(), &sa)
	roundTrip(t, b.Snapshot(), &sb)
	m, w := sa.Merge(sb), whole.Snapshot()
	if m.Count != w.Count || m.Sum != w.Sum || m.Min != w.Min || m.Max != w.Max || !slices.Equal(m.Buckets, w.Buckets) {
		t.Fatalf("merged %+v differs from whole (count %d sum %d min %d max %d, %d buckets)",
			struct{ Count, Sum uint64 }{m.Count, m.Sum}, w.Count, w.Sum, w.Min, w.Max, len(w.Buckets))
	}
}

func roundTrip(t *testing.T, in any, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentRecord(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10000 {
				h.Record(time.Duration(g*10000 + i))
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 80000 || s.Min != 0 || s.Max != 79999 {
		t.Fatalf("count %d min %d max %d", s.Count, s.Min, s.Max)
	}
	var n uint64
	for _, b := range s.Buckets {
		n += b[1]
	}
	if n != s.Count {
		t.Fatalf("buckets hold %d samples, count is %d", n, s.Count)
	}
}
