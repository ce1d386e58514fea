// The CUDA side of the public API as every build sees it: device parsing, the backend's status,
// and the errors asked-for-but-missing CUDA gives. On a machine with a supported GPU the layer
// tests at the end run too; elsewhere they skip and say why.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu/library_epilogue.hpp"
#include "gpu_reference.hpp"
#include "sparq/sparq.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/cuda_backend.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(2).to_string(), "cuda:2");
  EXPECT_EQ(Device::cpu().to_string(), "cpu");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1x", "CUDA"})
    EXPECT_THROW_WITH(Device::parse(bad), InvalidArgument, "expected cpu, cuda or cuda:N");
}

TEST(Device, F16ParsesAsADtype) {
  EXPECT_EQ(parse_dtype("f16"), DType::f16);
  EXPECT_STREQ(to_string(DType::f16), "f16");
}

TEST(CudaStatus, SaysWhyWhenNotUsable) {
  const CudaStatus s = cuda_status();
  EXPECT_FALSE(s.message.empty());
  if (s.usable) {
    EXPECT_TRUE(s.built);
    EXPECT_FALSE(s.gpus.empty());
  } else {
    std::cout << "CUDA not usable here: " << s.message << "\n";
  }
  // The status is computed once per process.
  EXPECT_EQ(cuda_status().message, s.message);
}

TEST(CudaStatus, MissingBackendFileIsNamed) {
  gpu::Backend* backend = nullptr;
  const CudaStatus s = load_cuda_backend("/nonexistent/libsparq_cuda.so", &backend);
  EXPECT_EQ(backend, nullptr);
  EXPECT_FALSE(s.usable);
  EXPECT_NE(s.message.find("/nonexistent/libsparq_cuda.so"), std::string::npos) << s.message;
}

TEST(CudaStatus, ALibraryThatIsNoBackendIsRefused) {
  // libsparq.so itself loads fine but does not export the backend's entry point.
  gpu::Backend* backend = nullptr;
  const CudaStatus s = load_cuda_backend("libsparq.so.0", &backend);
  EXPECT_EQ(backend, nullptr);
  EXPECT_FALSE(s.usable);
  EXPECT_FALSE(s.message.empty());
}

std::vector<float> weight_2of4(int64_t out, int64_t in, uint32_t seed) {
  const auto w = test::random_floats(static_cast<size_t>(out * in), seed);
  return sparse::prune_n_m(w, out, in, 2, 4);
}

// The split of the epilogue between cuBLASLt / cuSPARSELt and sparq's finishing pass, played out
// on scalars: the library computes relu?(a + beta * c + bias) for what it was given, sparq's pass
// the rest; together they must equal act(a + bias) + residual for every activation.
TEST(LibraryEpilogue, LibraryPlusSparqPassEqualsTheEpilogue) {
  const float values[] = {-2.5f, -0.3f, 0.0f, 0.4f, 3.0f};
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (bool has_bias : {false, true})
      for (bool has_residual : {false, true})
        for (bool refused : {false, true}) {
          // A library that refuses the bias / ReLU keeps only the residual as C (nm_lt.cpp).
          const gpu::LibraryEpilogue chosen = gpu::library_epilogue(has_bias, act);
          const gpu::LibraryEpilogue fused =
              refused ? gpu::LibraryEpilogue{.residual_as_c = chosen.residual_as_c} : chosen;
          EXPECT_EQ(chosen.bias, has_bias);
          const bool residual_in_library = has_residual && fused.residual_as_c;
          for (float a : values)
            for (float b : values)
              for (float r : values) {
                const float bias = has_bias ? b : 0.0f, residual = has_residual ? r : 0.0f;
                float v = a + (fused.bias ? bias : 0.0f) + (residual_in_library ? residual : 0.0f);
                if (fused.relu) v = v > 0.0f ? v : 0.0f;
                v += fused.bias ? 0.0f : bias;
                v = sparse::activate(v, fused.remaining(act));
                v += residual_in_library ? 0.0f : residual;
                EXPECT_FLOAT_EQ(v, sparse::activate(a + bias, act) + residual)
                    << to_string(act) << " bias=" << has_bias << " residual=" << has_residual
                    << " refused=" << refused << " a=" << a << " b=" << b << " r=" << r;
              }
        }
}

TEST(LibraryEpilogue, NamesWhatTheLibraryApplies) {
  EXPECT_EQ(gpu::library_epilogue(true, Activation::relu).suffix(), "+bias+relu");
  EXPECT_EQ(gpu::library_epilogue(true, Activation::gelu_erf).suffix(), "+bias");
  EXPECT_EQ(gpu::library_epilogue(false, Activation::none).suffix(), "");
}

TEST(CudaLinear, AskingForCudaWithoutAUsableGpuThrowsNotSupported) {
  const CudaStatus s = cuda_status();
  if (s.usable) GTEST_SKIP() << "a GPU is usable here: " << s.message;
  const auto w = weight_2of4(32, 64, 1);
  LinearOptions o;
  o.dtype = DType::f16;
  o.pattern = Pattern::n_of_m(2, 4);
  o.device = Device::cuda(0);
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 32, 64, nullptr, o), NotSupported,
                    "device cuda:0 requested but CUDA is not usable: " + s.message);
}

TEST(CudaLinear, DtypeAndDeviceMismatchesAreRefusedBeforeLoading) {
  const auto w = weight_2of4(32, 64, 2);
  LinearOptions o;
  o.dtype = DType::f16;  // CPU kernels take f32, bf16, int8
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 32, 64, nullptr, o), NotSupported,
                    "dtype f16 runs on Device::cuda only");
  o.dtype = DType::f32;
  o.device = Device::cuda(0);
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 32, 64, nullptr, o), NotSupported,
                    "dtype f32 is not supported on cuda:0");
  o.device = Device{Device::Kind::cuda, -1};
  o.dtype = DType::f16;
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 32, 64, nullptr, o), InvalidArgument,
                    "device index must be >= 0");
}

TEST(CudaLinear, ForwardDeviceOnACpuLayerIsAnError) {
  const auto w = weight_2of4(32, 64, 3);
  LinearOptions o;
  o.dtype = DType::f32;
  const auto layer = SparseLinear::pack(w.data(), 32, 64, nullptr, o);
  EXPECT_EQ(layer.device(), Device::cpu());
  float dummy = 0;
  EXPECT_THROW_WITH(layer.forward_device(&dummy, 1, &dummy), InvalidArgument,
                    "forward_device: the layer was packed for cpu");
}

// --- On a GPU: every dtype and pattern through the public API against the CPU reference. ---

struct GpuCase {
  DType dtype;
  Pattern pattern;
};

TEST(CudaLinear, MatchesTheReferenceOnTheGpu) {
  const CudaStatus s = cuda_status();
  if (!s.usable) GTEST_SKIP() << "no usable CUDA GPU: " << s.message;
  const std::vector<GpuCase> cases = {
      {DType::f16, Pattern::dense()},         {DType::bf16, Pattern::dense()},
      {DType::int8, Pattern::dense()},        {DType::f16, Pattern::n_of_m(2, 4)},
      {DType::bf16, Pattern::n_of_m(2, 4)},   {DType::int8, Pattern::n_of_m(2, 4)},
      {DType::f16, Pattern::blocks(16, 16)},  {DType::bf16, Pattern::blocks(32, 32)},
      {DType::f16, Pattern::blocks(16, 32)},  {DType::f16, Pattern::blocks(32, 16)},
      {DType::f16, Pattern::automatic()},     {DType::int8, Pattern::automatic()},
      {DType::int8, Pattern::blocks(32, 32)}, {DType::int8, Pattern::blocks(16, 32)},
  };
  uint32_t seed = 100;
  for (const GpuCase& c : cases)
    for (auto [out, in] : {std::pair<int64_t, int64_t>{64, 128}, {50, 72}, {96, 200}})
      for (int64_t tokens : {1, 3, 17, 130})
        for (Activation act : {Activation::none, Activation::gelu_erf}) {
          ++seed;
          const auto dense = test::random_floats(static_cast<size_t>(out * in), seed);
          std::vector<float> w = dense;
          if (c.pattern.kind == Pattern::Kind::n_m) w = sparse::prune_n_m(dense, out, in, 2, 4);
          if (c.pattern.kind == Pattern::Kind::block)
            w = sparse::prune_blocks(dense, out, in, c.pattern.block, 0.6);
          if (c.pattern.kind == Pattern::Kind::automatic)
            w = sparse::prune_blocks(dense, out, in, {16, 16}, 0.7);
          const auto bias = test::random_floats(static_cast<size_t>(out), seed + 1);
          const auto x = test::random_floats(static_cast<size_t>(tokens * in), seed + 2);
          const auto residual = test::random_floats(static_cast<size_t>(tokens * out), seed + 3);
          LinearOptions o;
          o.dtype = c.dtype;
          o.pattern = c.pattern;
          o.activation = act;
          o.device = Device::cuda(0);
          const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(), o);
          std::vector<float> y(static_cast<size_t>(tokens * out));
          layer.forward(x.data(), tokens, y.data(), residual.data());
          const auto want =
              test::gpu_reference(x, tokens, w, out, in, bias, act, residual, c.dtype);
          const double tol = c.dtype == DType::bf16 ? 3e-2 : 1e-2;
          test::expect_close(y, want, tol,
                             layer.info().kernel + " " + std::to_string(tokens) + "x" +
                                 std::to_string(out) + "x" + std::to_string(in));
        }
}

}  // namespace
}  // namespace sparq
