// Touches the pages of a fresh heap buffer on one of the engine's pool
// threads while the loading thread fills it (web/wasm-engine.js,
// Engine.startPrefault). The first write to a page of new wasm memory costs
// the OS a page fault; for a 246 MiB model that is more than a second, the
// largest part of a load from the cache. Done on a pool thread, from the
// buffer's end backwards while the loader writes from its front, it overlaps
// the reading instead of adding to it.
//
// A pool thread and not a new Web Worker: the pool's workers are started
// with the engine, so this starts no worker (a worker started from a worker
// now and then never returned under test in Firefox ESR; docs/browser.md,
// Tests).

#include <emscripten/bind.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace {

constexpr size_t kOsPage = 4096;  // the OS commits 4 KiB pages, not wasm's 64 KiB ones

struct Prefault {
  pthread_t thread;
  uint8_t* begin;
  size_t size;
  std::atomic<bool> stop{false};
};

// Only the loading thread starts and finishes prefaults: one at a time.
Prefault* running = nullptr;

void* touch_pages(void* arg) {
  auto* p = static_cast<Prefault*>(arg);
  // An atomic OR with 0 writes each byte's own value back in one step, so a
  // byte the loader writes at the same moment is never undone.
  for (size_t i = p->size; i > 0 && !p->stop.load(std::memory_order_relaxed);) {
    i = i > kOsPage ? i - kOsPage : 0;
    __atomic_fetch_or(p->begin + i, static_cast<uint8_t>(0), __ATOMIC_RELAXED);
  }
  return nullptr;
}

// Stops the running prefault (it may have finished already) and waits for
// its thread, which returns the worker to the pool.
void prefault_finish() {
  if (running == nullptr) return;
  running->stop.store(true, std::memory_order_relaxed);
  pthread_join(running->thread, nullptr);
  delete running;
  running = nullptr;
}

// True if a pool thread now touches [ptr, ptr + size); false if no thread
// could start (the caller checks that the pool has a free worker first).
bool prefault_start(double ptr, double size) {
  prefault_finish();
  if (!(ptr > 0 && size >= 1 && ptr + size <= 4294967296.0)) return false;
  auto* p = new Prefault;
  p->begin = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(ptr));
  p->size = static_cast<size_t>(size);
  if (pthread_create(&p->thread, nullptr, touch_pages, p) != 0) {
    delete p;
    return false;
  }
  running = p;
  return true;
}

}  // namespace

EMSCRIPTEN_BINDINGS(bitmamba_prefault) {
  emscripten::function("prefaultStart", &prefault_start);
  emscripten::function("prefaultFinish", &prefault_finish);
}
