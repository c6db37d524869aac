// Command floor measures the floor under the chat figures of metronome-load:
// what a bare Go TLS server costs to receive a small record on one
// connection and write it to another, with no XMPP at all. It runs the
// server in this process pinned by the caller (taskset) and the clients in
// a child process, on loopback, and prints the server's CPU seconds per
// 1,000 relayed messages at each offered rate.
//
//	taskset -c 0 go run ./test/load/floor --conns 2000 --rates 1000,4000,8000,16000
//
// The child (started with --client) runs on the CPUs it is given
// (FLOOR_CLIENT_CPU, default 1, via taskset when available).
//
// --mode fanout relays each message to every connection of a group of
// --group (a room), and reports per delivery. --mode login measures the
// floor under a login: one plain round trip, STARTTLS's, a TLS 1.3
// handshake, then --round-trips small records each way (an XMPP login has
// six after TLS: stream header, SASL auth, SASL response, stream restart,
// bind, presence and ping), then close; it reports the server's CPU per
// login and the login rate the clients reached.
//
//	taskset -c 0 go run ./test/load/floor --mode login --duration 10s
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const msgSize = 160 // about a small chat stanza

func main() {
	client := flag.String("client", "", "internal: run the clients against this address")
	conns := flag.Int("conns", 2000, "connections")
	rates := flag.String("rates", "1000,4000,8000,16000", "offered relays per second, one 10 s step each")
	step := flag.Duration("step", 10*time.Second, "duration of each step")
	mode := flag.String("mode", "relay", "relay, fanout or login")
	group := flag.Int("group", 50, "fanout: connections per group")
	trips := flag.Int("round-trips", 6, "login: round trips after the TLS handshake")
	duration := flag.Duration("duration", 10*time.Second, "login: how long to log in")
	concurrency := flag.Int("concurrency", 64, "login: logins at once")
	resume := flag.Bool("tls-resume", false, "login: clients resume their TLS session")
	flag.Parse()
	if *mode == "login" {
		if *client != "" {
			runLoginClients(*client, *trips, *duration, *concurrency, *resume)
			return
		}
		serveLogins(*trips, *duration, *concurrency, *resume)
		return
	}
	if *client != "" {
		runClients(*client, *conns, *rates, *step, *group)
		return
	}
	fan := 1
	if *mode == "fanout" {
		fan = *group
	}
	cert := selfSigned()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	var peers []*tls.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			mu.Lock()
			peers = append(peers, tc)
			mu.Unlock()
			go func() {
				// Each message names its recipient (first 4 bytes): relay it there.
				buf := make([]byte, msgSize)
				for {
					if _, err := io.ReadFull(tc, buf); err != nil {
						return
					}
					to := int(binary.BigEndian.Uint32(buf))
					mu.Lock()
					if fan == 1 {
						dst := peers[to%len(peers)]
						mu.Unlock()
						_, _ = dst.Write(buf)
						continue
					}
					first := to % len(peers) / fan * fan
					dsts := append([]*tls.Conn(nil), peers[first:min(first+fan, len(peers))]...)
					mu.Unlock()
					for _, dst := range dsts {
						_, _ = dst.Write(buf)
					}
				}
			}()
		}
	}()
	args := []string{"--client", ln.Addr().String(), "--conns", strconv.Itoa(*conns), "--rates", *rates, "--step", step.String(), "--group", strconv.Itoa(fan)}
	cmd := clientCommand(args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		panic(err)
	}
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	// The client prints "START rate" and "END rate n" lines around each step.
	var t0 time.Duration
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 256)
	for {
		n, err := out.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			i := strings.IndexByte(string(buf), '\n')
			if i < 0 {
				break
			}
			line := string(buf[:i])
			buf = buf[i+1:]
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "START":
				t0 = cpuTime()
			case len(f) == 3 && f[0] == "END":
				used := cpuTime() - t0
				msgs, _ := strconv.Atoi(f[2])
				if fan > 1 {
					fmt.Printf("offered %s/s in groups of %d: %d deliveries, server CPU %.4f s per 1,000 deliveries\n", f[1], fan, msgs, used.Seconds()/float64(msgs)*1000)
					break
				}
				fmt.Printf("offered %s/s: %d relayed, server CPU %.4f s per 1,000 messages\n", f[1], msgs, used.Seconds()/float64(msgs)*1000)
			default:
				fmt.Println(line)
			}
		}
		if err != nil {
			break
		}
	}
	_ = cmd.Wait()
}

// clientCommand is this program with args, on FLOOR_CLIENT_CPU.
func clientCommand(args []string) *exec.Cmd {
	cpu := os.Getenv("FLOOR_CLIENT_CPU")
	if cpu == "" {
		cpu = "1"
	}
	self, _ := os.Executable()
	cmd := exec.Command(self, args...)
	if p, err := exec.LookPath("taskset"); err == nil {
		cmd = exec.Command(p, append([]string{"-c", cpu, self}, args...)...)
	}
	cmd.Stderr = os.Stderr
	return cmd
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runClients sends at each rate for step; each message is received by
// fan connections.
func runClients(addr string, n int, rates string, step time.Duration, fan int) {
	cs := make([]*tls.Conn, n)
	var got atomic.Int64
	for i := range cs {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			panic(err)
		}
		cs[i] = c
		go func() {
			buf := make([]byte, msgSize)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	msg := make([]byte, msgSize)
	for _, f := range strings.Split(rates, ",") {
		rate, _ := strconv.ParseFloat(f, 64)
		total := int(rate * step.Seconds())
		want := int64(total * fan)
		start := got.Load()
		fmt.Printf("START %s\n", f)
		t0 := time.Now()
		for i := 0; i < total; i++ {
			due := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 200*time.Microsecond {
				time.Sleep(d)
			}
			binary.BigEndian.PutUint32(msg, uint32(mrand.IntN(n)))
			_, _ = cs[mrand.IntN(n)].Write(msg)
		}
		for got.Load()-start < want && time.Since(t0) < step+10*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Printf("END %s %d\n", f, got.Load()-start)
	}
}

func selfSigned() tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveLogins runs the login floor's server side in this process and the
// clients in a child, then prints the server's CPU per login.
func serveLogins(trips int, duration time.Duration, concurrency int, resume bool) {
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned()}, MinVersion: tls.VersionTLS13}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var logins atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				// The plain stream header and STARTTLS: two round trips.
				for range 2 {
					if _, err := io.ReadFull(c, buf[:msgSize]); err != nil {
						return
					}
					if _, err := c.Write(buf[:msgSize]); err != nil {
						return
					}
				}
				tc := tls.Server(c, cfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				for range trips {
					if _, err := io.ReadFull(tc, buf[:msgSize]); err != nil {
						return
					}
					if _, err := tc.Write(buf[:msgSize]); err != nil {
						return
					}
				}
				logins.Add(1)
				_, _ = io.ReadFull(tc, buf[:1]) // until the client closes
			}()
		}
	}()
	args := []string{"--mode", "login", "--client", ln.Addr().String(), "--round-trips", strconv.Itoa(trips),
		"--duration", duration.String(), "--concurrency", strconv.Itoa(concurrency), "--tls-resume=" + strconv.FormatBool(resume)}
	cmd := clientCommand(args)
	cmd.Stdout = os.Stdout
	t0, n0, w0 := cpuTime(), logins.Load(), time.Now()
	if err := cmd.Run(); err != nil {
		panic(err)
	}
	used, n, wall := cpuTime()-t0, logins.Load()-n0, time.Since(w0)
	fmt.Printf("%d logins in %.1f s (%.0f/s), %d round trips after TLS, TLS resumption %v: server CPU %.3f ms per login\n",
		n, wall.Seconds(), float64(n)/wall.Seconds(), trips, resume, used.Seconds()*1000/float64(n))
}

// runLoginClients logs in with concurrency clients at once for duration.
func runLoginClients(addr string, trips int, duration time.Duration, concurrency int, resume bool) {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	if resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1024)
	}
	end := time.Now().Add(duration)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, msgSize)
			for time.Now().Before(end) {
				if err := loginOnce(addr, cfg, trips, buf); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Printf("%d logins failed\n", n)
	}
}

func loginOnce(addr string, cfg *tls.Config, trips int, buf []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for range 2 {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	for range trips {
		if _, err := tc.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(tc, buf); err != nil {
			return err
		}
	}
	return nil
}
