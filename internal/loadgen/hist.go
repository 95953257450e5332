package loadgen

import (
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// subBits sets the histogram precision: 2^subBits sub-buckets per power of
// two, so a recorded value is reported within 1/64 (1.6 %) of its true value.
// Memory is fixed (histBuckets counters) whatever the number of samples,
// which is what lets one process record millions of latencies.
const (
	subBits     = 6
	subCount    = 1 << subBits
	histBuckets = (63-subBits)*subCount + 2*subCount
)

// Histogram is a log-bucket (HDR-style) histogram of non-negative durations
// in nanoseconds. Record is lock-free and safe for concurrent use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // valid when count > 0
	max    atomic.Int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf maps v >= 0 to its bucket: values below subCount exactly, larger
// ones by their top subBits+1 significant bits.
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return shift<<subBits + int(v>>shift)
}

// bucketRange is the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	shift := i>>subBits - 1
	m := int64(i - shift<<subBits) // in [subCount, 2*subCount)
	if shift == 0 {
		return m, m
	}
	lo = m << shift
	return lo, lo + (int64(1) << shift) - 1
}

// Record adds one sample; negative values (clock steps) count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.count.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Snapshot copies the histogram into its mergeable, JSON-friendly form.
func (h *Histogram) Snapshot() HistSnapshot {
	s := HistSnapshot{Count: h.count.Load(), Sum: h.sum.Load()}
	if s.Count > 0 {
		s.Min, s.Max = h.min.Load(), h.max.Load()
	}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// HistSnapshot is a sparse copy of a Histogram: pairs of (bucket, count)
// in bucket order. It is what child processes send to the parent.
type HistSnapshot struct {
	Count   uint64      `json:"count"`
	Sum     uint64      `json:"sum_ns"`
	Min     int64       `json:"min_ns"`
	Max     int64       `json:"max_ns"`
	Buckets [][2]uint64 `json:"buckets,omitempty"`
}

// Merge returns the histogram of both sample sets.
func (s HistSnapshot) Merge(o HistSnapshot) HistSnapshot {
	if o.Count == 0 {
		return s
	}
	if s.Count == 0 {
		return o
	}
	m := map[uint64]uint64{}
	for _, b := range s.Buckets {
		m[b[0]] += b[1]
	}
	for _, b := range o.Buckets {
		m[b[0]] += b[1]
	}
	r := HistSnapshot{Count: s.Count + o.Count, Sum: s.Sum + o.Sum, Min: min(s.Min, o.Min), Max: max(s.Max, o.Max)}
	for k, v := range m {
		r.Buckets = append(r.Buckets, [2]uint64{k, v})
	}
	sort.Slice(r.Buckets, func(i, j int) bool { return r.Buckets[i][0] < r.Buckets[j][0] })
	return r
}

// Quantile returns the value at quantile q in [0, 1]: the midpoint of the
// bucket holding the sample of rank ceil(q*count), clamped to the exact
// min and max. It is 0 for an empty histogram.
func (s HistSnapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(s.Min)
	}
	if q >= 1 {
		return time.Duration(s.Max)
	}
	rank := uint64(math.Ceil(q * float64(s.Count)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			lo, hi := bucketRange(int(b[0]))
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, s.Min), s.Max))
		}
	}
	return time.Duration(s.Max)
}

// Mean is the exact average, 0 when empty.
func (s HistSnapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return time.Duration(s.Sum / s.Count)
}
