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
	flag.Parse()
	if *client != "" {
		runClients(*client, *conns, *rates, *step)
		return
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
					dst := peers[to%len(peers)]
					mu.Unlock()
					_, _ = dst.Write(buf)
				}
			}()
		}
	}()
	args := []string{"--client", ln.Addr().String(), "--conns", strconv.Itoa(*conns), "--rates", *rates, "--step", step.String()}
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runClients(addr string, n int, rates string, step time.Duration) {
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
		for got.Load()-start < int64(total) && time.Since(t0) < step+10*time.Second {
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
