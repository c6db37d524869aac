package plugin

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/metronome-xmpp/metronome/sdk/abi"
)

// pageSize is the WebAssembly page size.
const pageSize = 65536

// Engine compiles plugin modules and keeps them while they are in use. A
// compiled module lives in its own wazero runtime, because the memory cap
// is a runtime setting; the machine code is cached on disk (wazero's
// compilation cache) so that a restart or a metronomectl dry run followed
// by the daemon's reload compiles each module once.
type Engine struct {
	cache wazero.CompilationCache

	mu       sync.Mutex
	compiled map[string]*Compiled // by SHA-256 and memory pages
}

// NewEngine returns an engine caching compiled code in cacheDir ("" keeps
// the cache in memory).
func NewEngine(cacheDir string) (*Engine, error) {
	e := &Engine{compiled: map[string]*Compiled{}}
	if cacheDir == "" {
		e.cache = wazero.NewCompilationCache()
		return e, nil
	}
	c, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("plugin: compilation cache: %w", err)
	}
	e.cache = c
	return e, nil
}

// Compiled is a compiled plugin module in its runtime, shared by every
// pool that runs it. Release it when done.
type Compiled struct {
	e    *Engine
	key  string
	refs int // guarded by e.mu

	rt        wazero.Runtime
	mod       wazero.CompiledModule
	limit     int64    // memory cap in bytes
	instances sync.Map // api.Module → *instance
}

// Compile compiles wasm (whose SHA-256 is sum) for instances capped at
// memLimit bytes of linear memory, or returns the module already compiled.
func (e *Engine) Compile(ctx context.Context, wasm []byte, sum string, memLimit int64) (*Compiled, error) {
	pages := memLimit / pageSize
	if pages < 1 {
		pages = 1
	}
	if pages > 65536 {
		pages = 65536
	}
	key := fmt.Sprintf("%s/%d", sum, pages)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.compiled[key]; ok {
		c.refs++
		return c, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(e.cache).
		WithMemoryLimitPages(uint32(pages)).
		WithCloseOnContextDone(true) // lets a call's deadline interrupt guest code
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	c := &Compiled{e: e, key: key, refs: 1, rt: rt, limit: pages * pageSize}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("plugin: wasi: %w", err)
	}
	if err := c.instantiateHost(ctx); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	mod, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		if strings.Contains(err.Error(), "over limit") {
			return nil, fmt.Errorf("plugin: the module needs more memory at start than allowed, over the %d MiB limit ([plugins] memory_limit): %w",
				c.limit>>20, err)
		}
		return nil, fmt.Errorf("plugin: not a valid WebAssembly module: %w", err)
	}
	c.mod = mod
	if err := c.check(); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	e.compiled[key] = c
	return c, nil
}

// check refuses modules that cannot run here, with a clear reason.
func (c *Compiled) check() error {
	for _, name := range []string{abi.ExportABI, abi.ExportBuffer, abi.ExportInit, abi.ExportEvent} {
		if _, ok := c.mod.ExportedFunctions()[name]; !ok {
			return fmt.Errorf("plugin: the module does not export %s: it was not built with the Metronome SDK (or not with -buildmode=c-shared)", name)
		}
	}
	for _, f := range c.mod.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != abi.ImportModule && mod != wasi_snapshot_preview1.ModuleName {
			return fmt.Errorf("plugin: the module imports %s.%s, which this server does not provide", mod, name)
		}
		if mod == abi.ImportModule && !hostFunctionNames[name] {
			return fmt.Errorf("plugin: the module imports %s.%s, which this server does not provide (built for a newer plugin API?)", mod, name)
		}
	}
	mems := c.mod.ImportedMemories()
	for _, m := range c.mod.ExportedMemories() {
		mems = append(mems, m)
	}
	for _, m := range mems {
		if need := int64(m.Min()) * pageSize; need > c.limit {
			return fmt.Errorf("plugin: the module needs %d MiB of memory at start, over the %d MiB limit ([plugins] memory_limit)",
				need>>20, c.limit>>20)
		}
	}
	return nil
}

// Release drops one reference; the last one closes the runtime.
func (c *Compiled) Release() {
	c.e.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last {
		delete(c.e.compiled, c.key)
	}
	c.e.mu.Unlock()
	if last {
		_ = c.rt.Close(context.Background())
	}
}

// MemoryLimit is the memory cap of this module's instances, in bytes.
func (c *Compiled) MemoryLimit() int64 { return c.limit }

// lookup finds the pool instance of a guest module.
func (c *Compiled) lookup(m api.Module) *instance {
	if v, ok := c.instances.Load(m); ok {
		return v.(*instance)
	}
	return nil
}
