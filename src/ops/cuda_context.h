// The CUDA execution context the ops share: one stream and one scratch pool per device.
// Everything the ops launch goes to the stream returned by stream(), so the engine can capture
// a whole forward pass into a CUDA graph by pointing set_stream() at a capturing stream.
// No CUDA header here: model and engine code may include this file.
#pragma once

#include <cstddef>

struct CUstream_st;  // cudaStream_t is CUstream_st*; declaring it keeps CUDA headers out

namespace falcon::ops::cuda {

using Stream = CUstream_st*;

// The stream the ops of the current device run on. Created on first use (a blocking stream, so
// the plain cudaMemcpy that Tensor::to() issues on the legacy stream waits for it).
Stream stream();
// Makes the ops of the current device run on `s` (nullptr: back to the context's own stream).
// The caller keeps `s` alive while it is set.
void set_stream(Stream s);
// Waits until all work queued on stream() has finished; throws falcon::Error on a CUDA fault.
void synchronize();
// True while stream() is being captured into a graph: ops skip their host-side checks then
// (a capture must not synchronise).
bool capturing();

// GPU time between two points of stream(), for the op profile: start() records an event,
// stop_ms() records a second one, waits for it and returns the milliseconds between them.
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void start();
  double stop_ms();

 private:
  void* begin_ = nullptr;  // cudaEvent_t
  void* end_ = nullptr;
};

// Grow-only device buffers owned by the context, one per purpose. A buffer grows (cudaMalloc,
// which synchronises) only when a call needs more than any call before it, so after one warm-up
// pass with the largest shapes no op allocates: what a graph capture needs.
// AttentionCounters is zero-filled whenever it grows; the kernels leave it zero after use.
enum class Scratch : int { AttentionPartials, AttentionCounters, ArgmaxPartials, ArgmaxCounters, Count };
void* scratch(Scratch which, size_t bytes);

// Device properties read once per device.
int sm_count();
int compute_capability();  // major * 10 + minor

}  // namespace falcon::ops::cuda
