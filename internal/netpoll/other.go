//go:build !linux

package netpoll

// Poller is not available on this system; New says so.
type Poller struct{}

// Desc is not available on this system.
type Desc struct{}

// New returns ErrUnsupported.
func New() (*Poller, error) { return nil, ErrUnsupported }

// Add is never reached: New fails.
func (p *Poller) Add(Conn, func()) (*Desc, error) { return nil, ErrUnsupported }

// Resume is never reached: New fails.
func (d *Desc) Resume() error { return ErrUnsupported }

// Remove is never reached: New fails.
func (d *Desc) Remove() {}

// Close does nothing.
func (p *Poller) Close() error { return nil }
