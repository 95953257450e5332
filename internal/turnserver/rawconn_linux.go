//go:build linux

package turnserver

import (
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDPConn is a *net.UDPConn whose ReadFrom and WriteTo issue recvfrom and
// sendto as raw system calls, bypassing the Go runtime's syscall
// bookkeeping, while still waiting for readiness in the runtime's netpoller
// (syscall.RawConn).
//
// Why: the relay's CPU per datagram was about twice coturn's, and the
// difference was the Go runtime waking its own threads, not pion's TURN
// logic (docs/benchmarks.md, "TURN"). Between datagrams every P is idle and
// the runtime's monitor thread (sysmon) sleeps; the ordinary syscall path
// (entersyscall) wakes it on the next recvfrom, and it then polls every
// 20 µs, each poll a nanosleep and a context switch, until the runtime is
// idle again: several wake-ups per relayed datagram. A raw syscall skips
// entersyscall, so sysmon sleeps on. The socket is non-blocking (the
// netpoller made it so), so recvfrom and sendto return at once and holding
// the P across them costs nothing; EAGAIN hands back to the netpoller
// exactly as net.UDPConn does. Measured: CPU per relayed MB down by about a
// quarter (18.2 to 25.0 MB per CPU-second; futex and nanosleep calls down
// 4- and 20-fold).
//
// Addresses cross as *net.UDPAddr, which pion requires. Anything unusual
// (another net.Addr type, an IPv6 zone on send) falls back to the
// embedded *net.UDPConn.
type rawUDPConn struct {
	*net.UDPConn
	raw   syscall.RawConn
	inet6 bool // AF_INET6 socket (else AF_INET)

	ops sync.Pool // *rawOp: the callbacks handed to raw, without a closure allocation per call
}

// rawOp carries one call's arguments and results through syscall.RawConn's
// callback. Its read and write method values are bound once, when the op
// is first made, so a call allocates nothing for them.
type rawOp struct {
	buf   []byte
	sa    unix.RawSockaddrAny
	salen uint32
	n     int
	errno syscall.Errno

	read, write func(fd uintptr) bool
}

// wrapUDP returns c as a rawUDPConn if it is a UDP socket, else c itself.
func wrapUDP(c net.PacketConn) net.PacketConn {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return c
	}
	// The socket's family decides the sockaddr sendto needs. net binds a
	// "udp6" or dual-stack socket as AF_INET6 and a "udp4" one as AF_INET;
	// ask the kernel rather than guess from the address.
	family := unix.AF_INET
	if ctrlErr := raw.Control(func(fd uintptr) {
		if sa, err := unix.Getsockname(int(fd)); err == nil {
			if _, v6 := sa.(*unix.SockaddrInet6); v6 {
				family = unix.AF_INET6
			}
		}
	}); ctrlErr != nil {
		return c
	}
	rc := &rawUDPConn{UDPConn: uc, raw: raw, inet6: family == unix.AF_INET6}
	rc.ops.New = func() any {
		op := &rawOp{}
		op.read, op.write = op.recvfrom, op.sendto
		return op
	}
	return rc
}

// recvfrom is the raw read callback: false (wait for readiness) on EAGAIN.
func (op *rawOp) recvfrom(fd uintptr) bool {
	var base unsafe.Pointer
	if len(op.buf) > 0 {
		base = unsafe.Pointer(&op.buf[0])
	}
	for {
		op.salen = uint32(unsafe.Sizeof(op.sa))
		r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(base), uintptr(len(op.buf)), 0,
			uintptr(unsafe.Pointer(&op.sa)), uintptr(unsafe.Pointer(&op.salen)))
		if e == unix.EINTR {
			continue
		}
		op.n, op.errno = int(r), e
		return e != unix.EAGAIN
	}
}

// sendto is the raw write callback; op.sa and op.salen hold the peer.
func (op *rawOp) sendto(fd uintptr) bool {
	var base unsafe.Pointer
	if len(op.buf) > 0 {
		base = unsafe.Pointer(&op.buf[0])
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(base), uintptr(len(op.buf)), 0,
			uintptr(unsafe.Pointer(&op.sa)), uintptr(op.salen))
		if e == unix.EINTR {
			continue
		}
		op.n, op.errno = int(r), e
		return e != unix.EAGAIN
	}
}

// ReadFrom reads one datagram, as net.UDPConn.ReadFrom does.
func (c *rawUDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	op := c.ops.Get().(*rawOp)
	defer c.put(op)
	op.buf = p
	if err := c.raw.Read(op.read); err != nil {
		return 0, nil, err // closed socket or deadline, already a *net.OpError
	}
	if op.errno != 0 {
		return 0, nil, &net.OpError{Op: "read", Net: c.network(), Source: c.LocalAddr(), Err: os.NewSyscallError("recvfrom", op.errno)}
	}
	addr := sockaddrToUDP(&op.sa)
	if addr == nil {
		// Not an IP peer: cannot happen on an AF_INET/AF_INET6 UDP socket.
		return 0, nil, &net.OpError{Op: "read", Net: c.network(), Source: c.LocalAddr(), Err: syscall.EAFNOSUPPORT}
	}
	return op.n, addr, nil
}

// WriteTo sends one datagram to addr, as net.UDPConn.WriteTo does.
func (c *rawUDPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua.Zone != "" {
		return c.UDPConn.WriteTo(p, addr)
	}
	op := c.ops.Get().(*rawOp)
	defer c.put(op)
	if !c.fillSockaddr(op, ua) {
		return c.UDPConn.WriteTo(p, addr) // lets net produce its usual error
	}
	op.buf = p
	if err := c.raw.Write(op.write); err != nil {
		return 0, err
	}
	if op.errno != 0 {
		return 0, &net.OpError{Op: "write", Net: c.network(), Source: c.LocalAddr(), Addr: addr, Err: os.NewSyscallError("sendto", op.errno)}
	}
	return op.n, nil
}

func (c *rawUDPConn) put(op *rawOp) {
	op.buf = nil // do not keep the caller's buffer alive
	c.ops.Put(op)
}

func (c *rawUDPConn) network() string {
	if c.inet6 {
		return "udp6"
	}
	return "udp4"
}

// fillSockaddr writes ua into op.sa in the socket's family; false if ua has
// no address of that family.
func (c *rawUDPConn) fillSockaddr(op *rawOp, ua *net.UDPAddr) bool {
	if ua.Port < 0 || ua.Port > 65535 {
		return false
	}
	port := uint16(ua.Port) //nolint:gosec // bounded above
	if !c.inet6 {
		ip4 := ua.IP.To4()
		if ip4 == nil {
			return false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&op.sa))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET}
		putPort(&sa.Port, port)
		copy(sa.Addr[:], ip4)
		op.salen = unix.SizeofSockaddrInet4
		return true
	}
	ip16 := ua.IP.To16()
	if ip16 == nil {
		return false
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&op.sa))
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	putPort(&sa.Port, port)
	copy(sa.Addr[:], ip16)
	op.salen = unix.SizeofSockaddrInet6
	return true
}

// putPort stores port in network byte order into a sockaddr's port field.
func putPort(field *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(field))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(field *uint16) int {
	b := (*[2]byte)(unsafe.Pointer(field))
	return int(b[0])<<8 | int(b[1])
}

// sockaddrToUDP converts the peer address recvfrom filled in; nil for a
// family other than IPv4 and IPv6.
func sockaddrToUDP(rsa *unix.RawSockaddrAny) *net.UDPAddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		ip := make(net.IP, net.IPv4len)
		copy(ip, sa.Addr[:])
		return &net.UDPAddr{IP: ip, Port: getPort(&sa.Port)}
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		ip := make(net.IP, net.IPv6len)
		copy(ip, sa.Addr[:])
		return &net.UDPAddr{IP: ip, Port: getPort(&sa.Port), Zone: zoneName(sa.Scope_id)}
	}
	return nil
}

// zoneName names an IPv6 scope as net does: the interface name, or the
// index in decimal if there is no such interface.
func zoneName(id uint32) string {
	if id == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(id), 10)
}
