// AVX-512 VNNI int8 2:4 prefill kernel (see int8_nm_prefill_kernel.hpp). Registers: token t of
// group g accumulates in zmm(g * T + t) (T tokens, 2 groups: zmm0..15 at most); the window's
// indices and weights of group g in zmm16 + 2g and zmm17 + 2g; zmm20 the broadcast activations,
// zmm21/22 the picked ones. After the windows zmm16..31 are the epilogue's.
#include <array>
#include <cstddef>
#include <vector>

#include "jit/epilogue_emitter.hpp"
#include "jit/generator.hpp"
#include "jit/int8_nm_prefill_kernel.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_nm_prefill_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class NmPrefillGenerator : public Generator {
 public:
  explicit NmPrefillGenerator(const NmPrefillKey& key) : key_(key), epilogue_(*this) {
    generate();
    finalize(features_of(Isa::avx512_vnni));
  }

 private:
  static constexpr int kEntry = sparse::kNmPrefillEntryBytes;
  static constexpr int kRows = sparse::kNmDecodeRows;

  Address arg(size_t offset) const { return ptr[args_ + offset]; }
  Zmm acc(int g, int t) const { return Zmm(g * key_.tokens + t); }
  int y_elem() const { return output_bytes(key_.post_ops().output()); }

  void generate();
  void groups(int count);  // windows and epilogue of `count` (1 or 2) groups at entry_
  void epilogue(int group);

  const NmPrefillKey key_;
  EpilogueEmitter epilogue_;
  // rdi: arguments; rsi: x walker; r8: x window stride; rdx: the groups' first entry; r9: the
  // second group's entry walker; rcx: window counter; rbp: groups left; r10: y; r11: y stride;
  // r12: bytes of one group's entries; r13: residual; r14: residual stride; r15: byte offset of
  // the groups' rows in the per-row arrays; rax, rbx: scratch.
  const Reg64 args_ = rdi, x_ = rsi, x_step_ = r8, entry_ = rdx, entry1_ = r9, count_ = rcx;
  const Reg64 left_ = rbp, y_ = r10, y_stride_ = r11, group_bytes_ = r12, res_ = r13;
  const Reg64 res_stride_ = r14, rows_ = r15;
};

void NmPrefillGenerator::generate() {
  preamble();
  mov(entry_, arg(offsetof(NmPrefillArgs, entries)));
  mov(group_bytes_, arg(offsetof(NmPrefillArgs, windows)));
  shl(group_bytes_, 7);  // * kEntry
  mov(left_, arg(offsetof(NmPrefillArgs, groups)));
  mov(y_, arg(offsetof(NmPrefillArgs, y)));
  mov(y_stride_, arg(offsetof(NmPrefillArgs, y_stride)));
  if (key_.operand != Operand::none) {
    mov(res_, arg(offsetof(NmPrefillArgs, residual)));
    mov(res_stride_, arg(offsetof(NmPrefillArgs, residual_stride)));
  }
  xor_(rows_, rows_);
  Label pairs, single, done;
  L(pairs);
  cmp(left_, 2);
  jb(single, T_NEAR);
  groups(2);
  sub(left_, 2);
  jmp(pairs, T_NEAR);
  L(single);
  test(left_, left_);
  jz(done, T_NEAR);
  groups(1);
  L(done);
  postamble();
  epilogue_.emit_table();
}

void NmPrefillGenerator::groups(int count) {
  const int tokens = key_.tokens;
  for (int g = 0; g < count; ++g)
    for (int t = 0; t < tokens; ++t) vpxord(acc(g, t), acc(g, t), acc(g, t));
  mov(x_, arg(offsetof(NmPrefillArgs, x)));
  mov(x_step_, arg(offsetof(NmPrefillArgs, x_window_stride)));
  mov(count_, arg(offsetof(NmPrefillArgs, windows)));
  mov(rax, entry_);
  lea(entry1_, ptr[entry_ + group_bytes_]);
  const Reg64 walk[2] = {rax, entry1_};
  const Zmm xq = zmm20;
  Label window;
  L(window);
  for (int g = 0; g < count; ++g) {
    vmovdqu8(Zmm(16 + 2 * g), ptr[walk[g]]);
    vmovdqu8(Zmm(17 + 2 * g), ptr[walk[g] + 64]);
  }
  for (int t = 0; t < tokens; ++t) {
    vpbroadcastq(xq, ptr[x_ + 8 * t]);
    for (int g = 0; g < count; ++g) {
      const Zmm picked = Zmm(21 + ((t * count + g) & 1));
      vpshufb(picked, xq, Zmm(16 + 2 * g));
      vpdpbusd(acc(g, t), picked, Zmm(17 + 2 * g));
    }
  }
  add(x_, x_step_);
  for (int g = 0; g < count; ++g) add(walk[g], kEntry);
  dec(count_);
  jnz(window, T_NEAR);
  for (int g = 0; g < count; ++g) {
    epilogue(g);
    add(entry_, group_bytes_);
    add(rows_, kRows * 4);
    add(y_, kRows * y_elem());
    if (key_.operand != Operand::none) add(res_, kRows * 4);
  }
}

// The key's post-ops on every token: acc(g, t) = act(float(acc - compensation) * x_scale[t] *
// w_scale + bias) [+ residual], stored to y's token t. Four tokens at a time up to the
// activation (GELU and SiLU are long dependent chains), then the join and the store per token.
void NmPrefillGenerator::epilogue(int g) {
  const int tokens = key_.tokens;
  const PostOpList post_ops = key_.post_ops();
  const Zmm comp = zmm16, ws = zmm17, bias = zmm18;
  mov(rax, arg(offsetof(NmPrefillArgs, compensation)));
  vmovdqu32(comp, ptr[rax + rows_]);
  mov(rax, arg(offsetof(NmPrefillArgs, w_scale)));
  vmovups(ws, ptr[rax + rows_]);
  mov(rax, arg(offsetof(NmPrefillArgs, bias)));
  vmovups(bias, ptr[rax + rows_]);
  mov(rax, arg(offsetof(NmPrefillArgs, x_scale)));
  PostOpSources<Zmm> sources;
  int first = 0;  // the first token of the lanes
  sources.compensation = [&](int) { return comp; };
  sources.x_scale = [&](int i) { return ptr_b[rax + 4 * (first + i)]; };
  sources.w_scale = [&](int) { return ws; };
  sources.bias = [&](int) { return bias; };
  constexpr int kLanes = 4;
  for (first = 0; first < tokens; first += kLanes) {
    std::vector<EpilogueEmitter::Lane<Zmm>> lanes;
    for (int i = 0; i < kLanes && first + i < tokens; ++i)
      lanes.push_back({acc(g, first + i), Zmm(19 + 3 * i), Zmm(20 + 3 * i), Zmm(21 + 3 * i)});
    epilogue_.apply(post_ops.before(PostOpKind::binary),
                    std::span<const EpilogueEmitter::Lane<Zmm>>(lanes.data(), lanes.size()),
                    sources);
  }
  // rax walks y's tokens, rbx residual's.
  const bool residual = post_ops.has(PostOpKind::binary);
  mov(rax, y_);
  if (residual) mov(rbx, res_);
  sources.tensor = [&](int) { return ptr[rbx]; };
  sources.destination = [&](int) { return ptr[rax]; };
  sources.inv_y_scale = ptr_b[args_ + offsetof(NmPrefillArgs, inv_y_scale)];
  for (int t = 0; t < tokens; ++t) {
    epilogue_.apply(post_ops.from(PostOpKind::binary),
                    EpilogueEmitter::Lane<Zmm>{acc(g, t), zmm19, zmm20, zmm21}, sources);
    if (t + 1 < tokens) {
      add(rax, y_stride_);
      if (residual) add(rbx, res_stride_);
    }
  }
}

class Avx512NmPrefillKernel final : public Int8NmPrefillKernel {
 public:
  explicit Avx512NmPrefillKernel(const NmPrefillKey& key) : Int8NmPrefillKernel(key), code_(key) {}
  void run(const NmPrefillArgs& args) const override { code_.run(&args); }

 private:
  NmPrefillGenerator code_;
};

}  // namespace

std::unique_ptr<Int8NmPrefillKernel> make_int8_nm_prefill_avx512_vnni(const NmPrefillKey& key) {
  return std::make_unique<Avx512NmPrefillKernel>(key);
}

std::shared_ptr<const Int8NmPrefillKernel> int8_nm_prefill_kernel(const NmPrefillKey& key) {
  if (!can_run(Isa::avx512_vnni))
    throw NotSupported("the int8 2:4 prefill kernel needs " +
                       features_of(Isa::avx512_vnni).names() + "; this CPU has " +
                       cpu_features().names());
  if (key.tokens < 1 || key.tokens > kNmPrefillTileTokens)
    throw InvalidArgument("int8 2:4 prefill kernel: tokens must be 1.." +
                          std::to_string(kNmPrefillTileTokens) + ", got " +
                          std::to_string(key.tokens));
  static KernelCache<NmPrefillKey, Int8NmPrefillKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<Int8NmPrefillKernel> {
    try {
      return make_int8_nm_prefill_avx512_vnni(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the int8 2:4 prefill kernel failed: ") + e.what());
    }
  });
}

}  // namespace sparq::jit
