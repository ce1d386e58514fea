// Every GPU kernel of the CUDA backend against the CPU oracle, called directly with device buffers
// and a stream (the path forward_device takes): sparq's BSR tensor-core kernels (fp16, bf16, int8)
// for each block shape, cuSPARSE Blocked-ELL, cuBLASLt dense and cuSPARSELt 2:4, in fp16 / bf16 /
// int8, with token, row and column tails. Skips with the reason when no supported GPU is usable,
// except for the host-side check of the int8 BSR kernel's weight layout.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gpu/attention_gemm.hpp"
#include "gpu/blocked_ell_sparse.hpp"
#include "gpu/bsr_linear.hpp"
#include "gpu/dense_lt.hpp"
#include "gpu/device_buffer.hpp"
#include "gpu/encoder_kernels.hpp"
#include "gpu/host_values.hpp"
#include "gpu/nm_lt.hpp"
#include "gpu_reference.hpp"
#include "sparq/sparq.hpp"
#include "sparse/prune.hpp"
#include "test_util.hpp"

namespace sparq::gpu {
namespace {

using MakeKernel = std::function<std::unique_ptr<GpuKernel>(
    const std::vector<float>& w, int64_t out, int64_t in, const float* bias, Activation act)>;

// The epilogues a layer can ask for; the libraries fuse some of them (library_epilogue.hpp), so
// each split between the library and sparq's pass is taken at least once.
struct EpilogueCase {
  bool bias;
  Activation act;
  bool residual;
};
constexpr EpilogueCase kEpilogues[] = {
    {false, Activation::none, false}, {true, Activation::none, false},
    {true, Activation::relu, false},  {true, Activation::none, true},
    {false, Activation::relu, true},  {true, Activation::gelu_tanh, true}};

// GTEST_SKIP returns from the function it is written in, so each test skips itself.
#define SKIP_WITHOUT_GPU()                                                          \
  do {                                                                              \
    const CudaStatus status_ = cuda_status();                                       \
    if (!status_.usable) GTEST_SKIP() << "no usable CUDA GPU: " << status_.message; \
  } while (0)

std::vector<float> download_to_f32(const DeviceBuffer& y, size_t n, Elem e) {
  std::vector<uint16_t> bits(n);
  check_cuda(cudaMemcpy(bits.data(), y.get(), n * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i)
    out[i] = e == Elem::f16 ? sparse::from_f16(bits[i]) : sparse::from_bf16(bits[i]);
  return out;
}

// Token counts, and whether x and the residual sit 2 bytes off a 16-byte boundary: the kernels'
// paths for operands that are not aligned (BSR without cp.async, cuSPARSELt's padded copy, no
// residual as C) beside the aligned ones (32-multiples, where cuSPARSELt writes y in place and may
// take the residual as C).
constexpr std::pair<int64_t, bool> kTokenCases[] = {
    {1, true}, {5, false}, {16, false}, {63, true}, {64, false}, {96, true}, {130, false}};

DeviceBuffer upload_at_offset(std::vector<uint16_t> bits, bool offset) {
  if (offset) bits.insert(bits.begin(), uint16_t{0});
  return upload(std::span<const uint16_t>(bits));
}

// int8 quantizes exactly as the oracle and accumulates exactly, so only the fp16 rounding of the
// output (at most one fp16 ulp with the epilogue's contracted multiply-adds: < 1e-3 relative)
// separates them; the fp16 / bf16 layers also differ in summation order.
double tolerance(DType dtype) {
  if (dtype == DType::int8) return 2e-3;
  return dtype == DType::bf16 ? 3e-2 : 1e-2;
}

// Random activations as a GPU layer of `dtype` receives them (16-bit; fp16 for int8 layers).
std::vector<float> layer_input(size_t count, uint32_t seed, DType dtype) {
  auto x = test::random_floats(count, seed);
  for (float& v : x) v = test::round_to(v, dtype == DType::int8 ? DType::f16 : dtype);
  return x;
}

// Runs `kernel` on x (tokens rows) on `stream` into a NaN-poisoned output and returns it as floats.
// The upload is waited for: a non-blocking stream does not wait for the legacy one it went on.
std::vector<float> run_kernel(const GpuKernel& kernel, const std::vector<float>& x, int64_t tokens,
                              int64_t out, Elem e, cudaStream_t stream) {
  const DeviceBuffer dx = upload(std::span<const uint16_t>(to_16bit(x, e)));
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  DeviceBuffer dy(static_cast<size_t>(tokens * out) * 2);
  check_cuda(cudaMemsetAsync(dy.get(), 0xff, dy.bytes(), stream), "cudaMemsetAsync");
  kernel.run(dx.get(), tokens, dy.get(), nullptr, stream);
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return download_to_f32(dy, static_cast<size_t>(tokens * out), e);
}

// A 2:4-pruned random weight, its bias, and its cuSPARSELt kernel (null, with `why`, in a build
// without cuSPARSELt).
struct TwoOfFourLayer {
  int64_t out, in;
  std::vector<float> w, bias;
  std::string why;
  std::unique_ptr<GpuKernel> kernel;
  TwoOfFourLayer(int64_t out_features, int64_t in_features, uint32_t seed, DType dtype,
                 Activation act)
      : out(out_features),
        in(in_features),
        w(sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), seed), out, in, 2,
                            4)),
        bias(test::random_floats(static_cast<size_t>(out), seed + 1)),
        kernel(make_nm_kernel(0, w.data(), out, in, bias.data(), dtype, act, why)) {}
};

// Runs `make` on weights pruned by `prune` for several shapes and every epilogue case, each kernel
// on every token case, and compares with the oracle.
void check_kernel(
    DType dtype,
    const std::function<std::vector<float>(const std::vector<float>&, int64_t, int64_t)>& prune,
    const MakeKernel& make) {
  const Elem e = activation_elem(dtype);
  const DType rounding = dtype == DType::int8 ? DType::f16 : dtype;
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  uint32_t seed = 7;
  for (auto [out, in] : {std::pair<int64_t, int64_t>{64, 64}, {48, 96}, {40, 72}, {128, 256}})
    for (const EpilogueCase& epilogue : kEpilogues) {
      ++seed;
      const auto w = prune(test::random_floats(static_cast<size_t>(out * in), seed), out, in);
      const auto bias = test::random_floats(static_cast<size_t>(out), seed + 1);
      const auto kernel = make(w, out, in, epilogue.bias ? bias.data() : nullptr, epilogue.act);
      for (const auto& [tokens, misaligned] : kTokenCases) {
        const uint32_t data_seed = seed * 1000 + static_cast<uint32_t>(tokens);
        auto x = test::random_floats(static_cast<size_t>(tokens * in), data_seed);
        auto residual = test::random_floats(static_cast<size_t>(tokens * out), data_seed + 1);
        for (float& v : x) v = test::round_to(v, rounding);
        for (float& v : residual) v = test::round_to(v, rounding);
        const DeviceBuffer dx = upload_at_offset(to_16bit(x, e), misaligned);
        const DeviceBuffer dr = upload_at_offset(to_16bit(residual, e), misaligned);
        const void* x_ptr = static_cast<const char*>(dx.get()) + (misaligned ? 2 : 0);
        const void* r_ptr = static_cast<const char*>(dr.get()) + (misaligned ? 2 : 0);
        DeviceBuffer dy(static_cast<size_t>(tokens * out) * 2);
        // NaN in fp16 and bf16: an output element the kernel does not write fails the comparison.
        check_cuda(cudaMemset(dy.get(), 0xff, dy.bytes()), "cudaMemset");
        kernel->run(x_ptr, tokens, dy.get(), epilogue.residual ? r_ptr : nullptr, stream);
        check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        const auto got = download_to_f32(dy, static_cast<size_t>(tokens * out), e);
        const auto want = test::gpu_reference(
            x, tokens, w, out, in, epilogue.bias ? bias : std::vector<float>(out, 0.0f),
            epilogue.act, epilogue.residual ? residual : std::vector<float>{}, dtype);
        test::expect_close(got, want, tolerance(dtype),
                           kernel->name() + " act=" + to_string(epilogue.act) +
                               (epilogue.residual ? " +residual" : "") + " tokens=" +
                               std::to_string(tokens) + (misaligned ? " (misaligned)" : "") +
                               " out=" + std::to_string(out) + " in=" + std::to_string(in));
      }
    }
  cudaStreamDestroy(stream);
}

auto blocks_pruned(BlockShape shape, double sparsity) {
  return [=](const std::vector<float>& w, int64_t out, int64_t in) {
    return sparse::prune_blocks(w, out, in, shape, sparsity);
  };
}

auto two_of_four() {
  return [](const std::vector<float>& w, int64_t out, int64_t in) {
    return sparse::prune_n_m(w, out, in, 2, 4);
  };
}

auto unpruned() {
  return [](const std::vector<float>& w, int64_t, int64_t) { return w; };
}

TEST(CudaKernels, BsrTensorCoreKernel) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::f16, DType::bf16, DType::int8})
    for (BlockShape shape : {BlockShape{16, 16}, {16, 32}, {32, 16}, {32, 32}})
      check_kernel(dtype, blocks_pruned(shape, 0.6),
                   [&](const std::vector<float>& w, int64_t out, int64_t in, const float* bias,
                       Activation act) {
                     const auto bsr = sparse::to_bsr(w, out, in, shape);
                     return make_bsr_kernel(bsr, bias, dtype, act);
                   });
}

TEST(CudaKernels, CusparseBlockedEll) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::f16, DType::bf16})
    for (int b : {16, 32})
      check_kernel(dtype, blocks_pruned({b, b}, 0.6),
                   [&](const std::vector<float>& w, int64_t out, int64_t in, const float* bias,
                       Activation act) {
                     const auto bsr = sparse::to_bsr(w, out, in, {b, b});
                     return make_blocked_ell_kernel(0, bsr, bias, dtype, act);
                   });
}

TEST(CudaKernels, CublasLtDense) {
  SKIP_WITHOUT_GPU();
  for (DType dtype : {DType::f16, DType::bf16, DType::int8})
    check_kernel(
        dtype, unpruned(),
        [&](const std::vector<float>& w, int64_t out, int64_t in, const float* bias,
            Activation act) { return make_dense_kernel(0, w.data(), out, in, bias, dtype, act); });
}

// From 2^24 multiply-adds cuBLASLt's candidates are timed and cuSPARSELt searches at the first call
// of a token count, and the fastest is kept (lt_matmul.cpp, nm_lt.cpp); whichever wins must still
// give the oracle's result. 256 x 256 x 256 is exactly the threshold.
TEST(CudaKernels, LibrariesTuneShapesFromTheThresholdUp) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 256;
  for (DType dtype : {DType::f16, DType::int8}) {
    const TwoOfFourLayer layer(256, 256, 11, dtype, Activation::relu);
    const auto x = layer_input(static_cast<size_t>(tokens * layer.in), 13, dtype);
    const auto want = test::gpu_reference(x, tokens, layer.w, layer.out, layer.in, layer.bias,
                                          Activation::relu, {}, dtype);
    const auto dense = make_dense_kernel(0, layer.w.data(), layer.out, layer.in, layer.bias.data(),
                                         dtype, Activation::relu);
    // Without cuSPARSELt only the dense side runs (CusparseLt2of4 says why it skips).
    for (const GpuKernel* kernel : {dense.get(), layer.kernel.get()}) {
      if (!kernel) continue;
      test::expect_close(run_kernel(*kernel, x, tokens, layer.out, activation_elem(dtype), nullptr),
                         want, tolerance(dtype), kernel->name() + " 256^3");
    }
  }
}

TEST(CudaKernels, CusparseLt2of4) {
  SKIP_WITHOUT_GPU();
  std::string why;
  if (!make_nm_kernel(0, std::vector<float>(32 * 32, 0.0f).data(), 32, 32, nullptr, DType::f16,
                      Activation::none, why))
    GTEST_SKIP() << why;
  for (DType dtype : {DType::f16, DType::bf16, DType::int8})
    check_kernel(dtype, two_of_four(),
                 [&](const std::vector<float>& w, int64_t out, int64_t in, const float* bias,
                     Activation act) {
                   std::string unused;
                   return make_nm_kernel(0, w.data(), out, in, bias, dtype, act, unused);
                 });
}

// cuSPARSELt's handles and plans are per thread (nm_lt.cpp): a layer packed on this thread runs
// from three others at once, each on a non-blocking stream of its own, at the token count planned
// at pack time (128) and at new ones, one of them (256) large enough for each thread to search.
TEST(CudaKernels, CusparseLt2of4FromSeveralThreads) {
  SKIP_WITHOUT_GPU();
  const TwoOfFourLayer layer(256, 256, 21, DType::f16, Activation::none);
  if (!layer.kernel) GTEST_SKIP() << layer.why;
  const std::vector<int64_t> token_counts = {128, 256, 70};
  std::vector<std::vector<float>> inputs;
  for (size_t i = 0; i < token_counts.size(); ++i)
    inputs.push_back(layer_input(static_cast<size_t>(token_counts[i] * layer.in),
                                 23 + static_cast<uint32_t>(i), DType::f16));
  constexpr int kThreads = 3;
  std::vector<std::vector<std::vector<float>>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      cudaStream_t stream = nullptr;
      try {
        check_cuda(cudaSetDevice(0), "cudaSetDevice");
        check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
        for (size_t i = 0; i < token_counts.size(); ++i)
          got[t].push_back(
              run_kernel(*layer.kernel, inputs[i], token_counts[i], layer.out, Elem::f16, stream));
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
      if (stream) cudaStreamDestroy(stream);
    });
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(errors[t], "") << "thread " << t;
    ASSERT_EQ(got[t].size(), token_counts.size());
    for (size_t i = 0; i < token_counts.size(); ++i) {
      const auto want = test::gpu_reference(inputs[i], token_counts[i], layer.w, layer.out,
                                            layer.in, layer.bias, Activation::none, {}, DType::f16);
      test::expect_close(
          got[t][i], want, tolerance(DType::f16),
          "thread " + std::to_string(t) + ", " + std::to_string(token_counts[i]) + " tokens");
    }
  }
}

// Inside a CUDA graph capture a 2:4 layer cannot search for a new token count's algorithm: it says
// so before queuing anything (the capture stays valid). Planned beforehand, it is captured and the
// graph's replay gives the oracle's result.
TEST(CudaKernels, TwoOfFourLayerInsideAGraphCapture) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 64;  // pack time planned 128 tokens, not 64
  const TwoOfFourLayer layer(64, 128, 31, DType::f16, Activation::relu);
  if (!layer.kernel) GTEST_SKIP() << layer.why;
  const GpuKernel& kernel = *layer.kernel;
  const auto x = layer_input(static_cast<size_t>(tokens * layer.in), 33, DType::f16);
  const DeviceBuffer dx = upload(std::span<const uint16_t>(to_16bit(x, Elem::f16)));
  DeviceBuffer dy(static_cast<size_t>(tokens * layer.out) * 2);
  // Ends a capture that a throwing call leaves open (in global mode an open capture would make
  // every later test's CUDA calls on this thread fail), and frees what the test made.
  struct Graph {
    cudaStream_t stream = nullptr;
    bool capturing = false;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    void begin() {
      check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal),
                 "cudaStreamBeginCapture");
      capturing = true;
    }
    void end() {
      capturing = false;
      if (graph) cudaGraphDestroy(graph);
      graph = nullptr;
      check_cuda(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    }
    ~Graph() {
      if (capturing) {
        cudaGraph_t left = nullptr;
        cudaStreamEndCapture(stream, &left);
        if (left) cudaGraphDestroy(left);
      }
      if (exec) cudaGraphExecDestroy(exec);
      if (graph) cudaGraphDestroy(graph);
      if (stream) cudaStreamDestroy(stream);
    }
  } g;
  check_cuda(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  g.begin();
  EXPECT_THROW(kernel.run(dx.get(), tokens, dy.get(), nullptr, g.stream), NotSupported);
  g.end();  // succeeds only if the refused call left the capture valid

  kernel.run(dx.get(), tokens, dy.get(), nullptr, g.stream);  // plans 64 tokens
  check_cuda(cudaMemsetAsync(dy.get(), 0xff, dy.bytes(), g.stream), "cudaMemsetAsync");
  check_cuda(cudaStreamSynchronize(g.stream), "cudaStreamSynchronize");
  g.begin();
  kernel.run(dx.get(), tokens, dy.get(), nullptr, g.stream);
  g.end();
  check_cuda(cudaGraphInstantiate(&g.exec, g.graph, 0), "cudaGraphInstantiate");
  check_cuda(cudaGraphLaunch(g.exec, g.stream), "cudaGraphLaunch");
  check_cuda(cudaStreamSynchronize(g.stream), "cudaStreamSynchronize");
  const auto want = test::gpu_reference(x, tokens, layer.w, layer.out, layer.in, layer.bias,
                                        Activation::relu, {}, DType::f16);
  test::expect_close(download_to_f32(dy, static_cast<size_t>(tokens * layer.out), Elem::f16), want,
                     tolerance(DType::f16), kernel.name() + " replayed from a CUDA graph");
}

// cuBLASLt and cuSPARSELt take bias and ReLU into their own epilogue for fp16 / bf16 (the kernel
// name says what they apply). cuSPARSELt's fused plan is verified at pack time and dropped when its
// output is wrong, so a missing suffix there means cuSPARSELt's epilogue did not give act(bias).
TEST(CudaKernels, LibrariesTakeBiasAndReluIntoTheirEpilogue) {
  SKIP_WITHOUT_GPU();
  const int64_t out = 64, in = 128;
  const auto w = sparse::prune_n_m(test::random_floats(out * in, 3), out, in, 2, 4);
  const auto bias = test::random_floats(out, 4);
  for (DType dtype : {DType::f16, DType::bf16})
    for (Activation act : {Activation::none, Activation::relu, Activation::gelu_erf}) {
      const std::string want = act == Activation::relu ? "+bias+relu" : "+bias";
      const auto dense = make_dense_kernel(0, w.data(), out, in, bias.data(), dtype, act);
      EXPECT_TRUE(dense->name().ends_with(want)) << dense->name() << " should end in " << want;
      std::string why;
      const auto nm = make_nm_kernel(0, w.data(), out, in, bias.data(), dtype, act, why);
      if (!nm) continue;  // built without cuSPARSELt: CusparseLt2of4 says so
      EXPECT_TRUE(nm->name().ends_with(want))
          << nm->name() << " should end in " << want
          << ": cuSPARSELt refused the fused bias / ReLU or its output on zero activations was not "
             "act(bias)";
    }
}

// The encoder's two attention paths agree: cuBLAS GEMMs + masked softmax (the fast path) and the
// one-CTA-per-query-block kernel (its twin), with padded and empty sequences.
TEST(CudaKernels, GemmAttentionMatchesTheAttentionKernel) {
  SKIP_WITHOUT_GPU();
  int max_shared = 0;
  check_cuda(cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0),
             "cudaDeviceGetAttribute");
  struct Case {
    int64_t seq, d;
    std::vector<int64_t> lengths;
  };
  // seq 512 with d 128 needs the attention kernel's opt-in shared memory (> 48 KiB).
  // Longest lengths short of seq (the batched GEMMs stop there), an odd seq (padded score rows),
  // a batch with nothing to attend to.
  const std::vector<Case> cases = {{37, 32, {37, 20, 1, 0}},  {37, 64, {37, 20, 1, 0}},
                                   {37, 128, {37, 20, 1, 0}}, {512, 128, {512, 300}},
                                   {40, 64, {29, 7, 0}},      {37, 64, {36, 5}},
                                   {130, 64, {128, 3}},       {37, 64, {0, 0}}};
  for (Elem e : {Elem::f16, Elem::bf16})
    for (const Case& c : cases) {
      const int64_t seq = c.seq, d = c.d, heads = 3, hidden = heads * d;
      const std::vector<int64_t>& lengths = c.lengths;
      const auto batch = static_cast<int64_t>(lengths.size());
      const std::vector<int32_t> lengths32(lengths.begin(), lengths.end());
      const auto qkv =
          test::random_floats(static_cast<size_t>(batch * seq * 3 * hidden), 11, -2, 2);
      const DeviceBuffer dqkv = upload(std::span<const uint16_t>(to_16bit(qkv, e)));
      const DeviceBuffer dlen = upload(std::span<const int32_t>(lengths32));
      const size_t n = static_cast<size_t>(batch * seq * hidden);
      DeviceBuffer a(n * 2), b(n * 2);
      check_cuda(cudaMemset(a.get(), 0x7f, n * 2), "cudaMemset");  // garbage the paths must fill
      check_cuda(cudaMemset(b.get(), 0x7f, n * 2), "cudaMemset");
      attention(dqkv.get(), dlen.get<int32_t>(), batch, seq, heads, d, a.get(), e, max_shared,
                nullptr);
      gemm_attention(0, dqkv.get(), dlen.get<int32_t>(), lengths.data(), batch, seq, heads, d,
                     b.get(), e, nullptr);
      check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
      const auto want = download_to_f32(a, n, e), got = download_to_f32(b, n, e);
      test::expect_close(got, want, e == Elem::bf16 ? 3e-2 : 1e-2,
                         std::string("attention ") + elem_name(e) + " d=" + std::to_string(d));
      for (int64_t s = 0; s < batch; ++s)
        for (int64_t q = lengths[s]; q < seq; ++q)
          for (int64_t i = 0; i < hidden; ++i)
            ASSERT_EQ(got[static_cast<size_t>((s * seq + q) * hidden + i)], 0.0f)
                << "padded query " << q << " of sequence " << s;
    }
}

// Host-side, so it runs without a GPU: the int8 BSR kernel's weight panels, read the way the
// kernel's wmma fragments read them (matrix_a row-major, ldm 16, at kk*R*16 + i*256 of the block),
// against activations in the k-plane layout, give exactly the oracle's int32 sums.
TEST(CudaKernels, Int8PanelsGiveTheOraclesIntegerSums) {
  for (BlockShape shape : {BlockShape{16, 16}, {16, 32}, {32, 16}, {32, 32}})
    for (auto [out, in] : {std::pair<int64_t, int64_t>{40, 72}, {64, 96}, {33, 50}}) {
      const int64_t tokens = 5, R = shape.rows, C = shape.cols;
      const auto w = sparse::prune_blocks(
          test::random_floats(static_cast<size_t>(out * in), static_cast<uint32_t>(out + in)), out,
          in, shape, 0.5);
      const sparse::Bsr bsr = sparse::to_bsr(w, out, in, shape);
      const Int8Panels p = quantize_to_panels(bsr);
      std::vector<int8_t> wq(w.size()), xq(static_cast<size_t>(tokens * in));
      std::vector<float> ws(static_cast<size_t>(out)), xs(static_cast<size_t>(tokens));
      sparse::quantize_rows(w.data(), out, in, wq.data(), ws.data());
      EXPECT_EQ(p.scale, ws);
      const auto x = test::random_floats(xq.size(), 9);
      sparse::quantize_rows(x.data(), tokens, in, xq.data(), xs.data());
      // The k-planes of quantize_rows_planar: [ld/16][tokens][16], zero past the last column.
      const int64_t ld = (in + 31) / 32 * 32;
      std::vector<int8_t> planes(static_cast<size_t>(ld * tokens), 0);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t k = 0; k < in; ++k)
          planes[static_cast<size_t>((k / 16) * tokens * 16 + t * 16 + k % 16)] =
              xq[static_cast<size_t>(t * in + k)];
      for (int64_t br = 0; br < bsr.block_rows(); ++br)
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t r = 0; r < R && br * R + r < out; ++r) {
            int32_t acc = 0;
            for (int64_t b = bsr.row_ptr[static_cast<size_t>(br)];
                 b < bsr.row_ptr[static_cast<size_t>(br + 1)]; ++b)
              for (int64_t kk = 0; kk < C / 16; ++kk)
                for (int64_t k = 0; k < 16; ++k) {
                  const int64_t i = r / 16, m = r % 16;
                  const int64_t plane = bsr.col_idx[static_cast<size_t>(b)] * (C / 16) + kk;
                  acc += int32_t{p.panels[static_cast<size_t>(b * R * C + kk * R * 16 + i * 256 +
                                                              m * 16 + k)]} *
                         planes[static_cast<size_t>(plane * tokens * 16 + t * 16 + k)];
                }
            const int64_t o = br * R + r;
            int32_t want = 0;
            for (int64_t k = 0; k < in; ++k)
              want += int32_t{wq[static_cast<size_t>(o * in + k)]} *
                      xq[static_cast<size_t>(t * in + k)];
            ASSERT_EQ(acc, want) << "block " << R << "x" << C << ", " << out << " x " << in
                                 << ", row " << o << ", token " << t;
          }
    }
}

// The GPU's per-token quantization equals the CPU's bit for bit, in the row-major layout of the
// library int8 paths and in the k-planes of the int8 BSR kernel (zeros past the last column and
// the last token).
TEST(CudaKernels, QuantizeRowsMatchesTheCpuInBothLayouts) {
  SKIP_WITHOUT_GPU();
  for (auto [tokens, in] : {std::pair<int64_t, int64_t>{1, 16}, {5, 40}, {70, 96}, {130, 33}}) {
    auto x = test::random_floats(static_cast<size_t>(tokens * in), static_cast<uint32_t>(in));
    for (float& v : x) v = test::round_to(v, DType::f16);
    x[0] = 0.0f;  // and one all-zero row: scale 0, all zero
    if (tokens > 1) std::fill_n(x.begin() + in, in, 0.0f);
    std::vector<int8_t> want(x.size());
    std::vector<float> want_scale(static_cast<size_t>(tokens));
    sparse::quantize_rows(x.data(), tokens, in, want.data(), want_scale.data());
    const DeviceBuffer dx = upload(std::span<const uint16_t>(to_16bit(x, Elem::f16)));
    const int64_t ld = (in + 31) / 32 * 32, plane_rows = (tokens + 63) / 64 * 64;
    DeviceBuffer rows(static_cast<size_t>(tokens * ld)),
        planes(static_cast<size_t>(plane_rows * ld));
    DeviceBuffer scale_rows(static_cast<size_t>(tokens) * 4), scale_planes(scale_rows.bytes());
    // Garbage the kernels must overwrite, zero padding included.
    check_cuda(cudaMemset(rows.get(), 0x55, rows.bytes()), "cudaMemset");
    check_cuda(cudaMemset(planes.get(), 0x55, planes.bytes()), "cudaMemset");
    quantize_rows(dx.get(), tokens, in, rows.get<int8_t>(), ld, scale_rows.get<float>(), nullptr);
    quantize_rows_planar(dx.get(), tokens, in, planes.get<int8_t>(), ld, plane_rows,
                         scale_planes.get<float>(), nullptr);
    std::vector<int8_t> got_rows(rows.bytes()), got_planes(planes.bytes());
    std::vector<float> got_scale(static_cast<size_t>(tokens)), got_scale_planes(got_scale.size());
    check_cuda(cudaMemcpy(got_rows.data(), rows.get(), rows.bytes(), cudaMemcpyDeviceToHost),
               "cudaMemcpy");
    check_cuda(cudaMemcpy(got_planes.data(), planes.get(), planes.bytes(), cudaMemcpyDeviceToHost),
               "cudaMemcpy");
    check_cuda(
        cudaMemcpy(got_scale.data(), scale_rows.get(), scale_rows.bytes(), cudaMemcpyDeviceToHost),
        "cudaMemcpy");
    check_cuda(cudaMemcpy(got_scale_planes.data(), scale_planes.get(), scale_planes.bytes(),
                          cudaMemcpyDeviceToHost),
               "cudaMemcpy");
    EXPECT_EQ(got_scale, want_scale) << tokens << " x " << in;
    EXPECT_EQ(got_scale_planes, want_scale) << tokens << " x " << in;
    for (int64_t t = 0; t < plane_rows; ++t)
      for (int64_t k = 0; k < ld; ++k) {
        const int8_t w = t < tokens && k < in ? want[static_cast<size_t>(t * in + k)] : int8_t{0};
        if (t < tokens) {
          ASSERT_EQ(got_rows[static_cast<size_t>(t * ld + k)], w)
              << "row-major, token " << t << " column " << k << " of " << tokens << " x " << in;
        }
        ASSERT_EQ(got_planes[static_cast<size_t>((k / 16) * plane_rows * 16 + t * 16 + k % 16)], w)
            << "k-planes, token " << t << " column " << k << " of " << tokens << " x " << in;
      }
  }
}

// forward_device through the public API on a caller's stream equals the host-pointer forward.
TEST(CudaKernels, ForwardDeviceMatchesForward) {
  SKIP_WITHOUT_GPU();
  const int64_t out = 96, in = 128, tokens = 33;
  const auto w = sparse::prune_n_m(test::random_floats(out * in, 5), out, in, 2, 4);
  LinearOptions o;
  o.dtype = DType::f16;
  o.pattern = Pattern::n_of_m(2, 4);
  o.device = Device::cuda(0);
  const auto layer = SparseLinear::pack(w.data(), out, in, nullptr, o);
  auto x = test::random_floats(tokens * in, 6);
  for (float& v : x) v = test::round_to(v, DType::f16);
  std::vector<float> host_y(tokens * out);
  layer.forward(x.data(), tokens, host_y.data());
  const DeviceBuffer dx = upload(std::span<const uint16_t>(to_16bit(x, Elem::f16)));
  DeviceBuffer dy(static_cast<size_t>(tokens * out) * 2);
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  layer.forward_device(dx.get(), tokens, dy.get(), nullptr, stream);
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  cudaStreamDestroy(stream);
  const auto device_y = download_to_f32(dy, static_cast<size_t>(tokens * out), Elem::f16);
  test::expect_close(device_y, host_y, 1e-3, "forward_device vs forward");
}

}  // namespace
}  // namespace sparq::gpu
