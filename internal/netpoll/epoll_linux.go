//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller is an epoll instance and the goroutine that waits on it.
type Poller struct {
	epfd   int
	wakefd int // eventfd that ends the wait loop on Close

	mu    sync.RWMutex
	descs map[int32]*Desc // by descriptor
	gen   uint32
	done  chan struct{}
	close sync.Once
}

// Desc is one registered connection.
type Desc struct {
	p  *Poller
	rc syscall.RawConn
	fd int32
	// gen tells this registration from an earlier one of the same
	// descriptor number (closed, then reused by a new connection) whose
	// event was already returned by epoll_wait.
	gen uint32
	fn  func()
}

// New starts a poller.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("netpoll: epoll_ctl: %w", err)
	}
	p := &Poller{epfd: epfd, wakefd: wakefd, descs: map[int32]*Desc{}, done: make(chan struct{})}
	go p.wait()
	return p, nil
}

// armed: level-triggered, one event per arming. The callback owns the
// connection until it calls Resume, so two callbacks never run at once.
const armed = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// Add registers c; fn runs on a new goroutine when c has bytes to read or
// was closed by the peer, once per Add or Resume.
func (p *Poller) Add(c Conn, fn func()) (*Desc, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	d := &Desc{p: p, rc: rc, fn: fn}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		d.fd = int32(fd)
		p.mu.Lock()
		p.gen++
		d.gen = p.gen
		p.descs[d.fd] = d
		p.mu.Unlock()
		ev := unix.EpollEvent{Events: armed, Fd: d.fd, Pad: int32(d.gen)}
		cerr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.forget(d)
		return nil, fmt.Errorf("netpoll: add: %w", err)
	}
	return d, nil
}

// Resume re-arms d after its callback has read what there was. It fails
// once the connection is closed.
func (d *Desc) Resume() error {
	var cerr error
	err := d.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: armed, Fd: d.fd, Pad: int32(d.gen)}
		cerr = unix.EpollCtl(d.p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	return err
}

// Remove unregisters d; call it before closing the connection. Closing
// removes the descriptor from epoll anyway, so an error here is harmless.
func (d *Desc) Remove() {
	_ = d.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(d.p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	d.p.forget(d)
}

func (p *Poller) forget(d *Desc) {
	p.mu.Lock()
	if p.descs[d.fd] == d {
		delete(p.descs, d.fd)
	}
	p.mu.Unlock()
}

// Close stops the poller. Registered connections are not closed; their
// callbacks no longer run.
func (p *Poller) Close() error {
	if p == nil {
		return nil
	}
	p.close.Do(func() {
		var one = [8]byte{1}
		_, _ = unix.Write(p.wakefd, one[:])
		<-p.done
		unix.Close(p.wakefd)
		unix.Close(p.epfd)
	})
	return nil
}

func (p *Poller) wait() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // the epoll descriptor is gone: nothing left to do
		}
		for i := range n {
			ev := &events[i]
			if ev.Fd == int32(p.wakefd) {
				return
			}
			p.mu.RLock()
			d := p.descs[ev.Fd]
			p.mu.RUnlock()
			if d != nil && d.gen == uint32(ev.Pad) {
				go d.fn()
			}
		}
	}
}
