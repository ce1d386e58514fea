// Emits the epilogues of every generated kernel: a post-op list (jit/post_ops.hpp) applied to
// xmm, ymm or zmm registers, from where each op's operands sit to where the store writes.
// Constants live in a table of 64-byte rows emitted after the kernel body, so xmm, ymm and zmm
// operands alike read them as full-width memory operands.
#pragma once

#include <xbyak/xbyak.h>

#include <functional>
#include <optional>
#include <span>

#include "jit/operand.hpp"
#include "jit/post_ops.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

// What a post-op reads for one vector: a register, or a full vector in memory (AVX-512: also an
// embedded broadcast, ptr_b, for the ops that read it as an arithmetic operand: compensation,
// x_scale, w_scale, a bias that does not follow dequantize, the tensor, inv_y_scale).
template <typename Vmm>
class PostOpSource {
 public:
  PostOpSource(const Vmm& reg) : reg_(reg) {}             // NOLINT(google-explicit-constructor)
  PostOpSource(const Xbyak::Address& mem) : mem_(mem) {}  // NOLINT(google-explicit-constructor)
  const Xbyak::Operand& operand() const {
    if (reg_) return *reg_;
    return *mem_;
  }
  const std::optional<Vmm>& reg() const { return reg_; }

 private:
  std::optional<Vmm> reg_;
  std::optional<Xbyak::Address> mem_;
};

// Where a kernel keeps what its post-ops read and write, per vector (lane) of the call to
// EpilogueEmitter::apply. Only the ops of the list are asked for theirs.
template <typename Vmm>
struct PostOpSources {
  using Of = std::function<PostOpSource<Vmm>(int lane)>;
  Of compensation;      // dequantize: int32, subtracted first (u8 activations); empty: none
  Of x_scale, w_scale;  // dequantize
  // bias. After dequantize the fma needs it in a register: a bias in memory is loaded into the
  // lane's t0 first (so t0 must not be any other source of that lane).
  Of bias;
  Of tensor;                                            // binary: the call's tensor operand
  std::function<Xbyak::Address(int lane)> destination;  // store
  // store as s8: 1 / y_scale, and the clamp bounds (registers save two loads; default: the
  // constant table).
  std::optional<PostOpSource<Vmm>> inv_y_scale, quant_max, quant_min;
  // zmm store: the elements written (k0: all; xmm and ymm stores are never masked); the scratch
  // mask of the zmm bf16 rounding.
  Xbyak::Opmask store_mask = Xbyak::Opmask(0), nan_mask = Xbyak::Opmask(7);
};

class EpilogueEmitter {
 public:
  enum Const : int {
    kOne,
    kExpMax,
    kExpMin,
    kLog2e,
    kLn2Hi,
    kLn2Lo,
    kC2,
    kC3,
    kC4,
    kC5,
    kC6,
    kGeluA,
    kGeluB,
    kExpBias,
    kQuantMax,
    kQuantMin,
    // erf(x / sqrt 2) = x P(x^2) / Q(x^2) for |x| <= 4 sqrt 2 (a rational fit made for sparq,
    // |error| < 4e-7): the clamp, then P's and Q's coefficients from the constant term up.
    kErfClampHi,
    kErfClampLo,
    kErfP0,
    kErfP1,
    kErfP2,
    kErfP3,
    kErfP4,
    kErfP5,
    kErfP6,
    kErfQ1,
    kErfQ2,
    kErfQ3,
    kErfQ4,
    // Integer constants of the bf16 rounding: the lowest bit, 0x7fff, and the quiet-NaN bit.
    kOneBit,
    kBf16Round,
    kBf16QuietBit,
    kConstCount
  };

  explicit EpilogueEmitter(Xbyak::CodeGenerator& gen) : gen_(gen) {}

  Xbyak::Address constant(Const c) const;

  // One vector to activate in place and three scratch registers of its own.
  template <typename Vmm>
  struct Lane {
    Vmm x, t0, t1, t2;
  };

  // Emits `list`'s ops in order on every lane's x (each op for all lanes before the next, so
  // that the lanes' chains interleave): the one place where every kernel's epilogue is emitted.
  // Dequantize followed by bias is one fma. The store writes each lane to
  // sources.destination(lane): fp32, int8 (requantized, saturated) or bf16 (zmm, ymm; xmm lanes
  // store fp32 and int8 only: NotSupported otherwise). A lane's t0..t2 are scratch; nothing else
  // is written but the destinations (and nan_mask for a zmm bf16 store).
  template <typename Vmm>
  void apply(const PostOpList& list, std::span<const Lane<Vmm>> lanes,
             const PostOpSources<Vmm>& sources);
  template <typename Vmm>
  void apply(const PostOpList& list, const Lane<Vmm>& lane, const PostOpSources<Vmm>& sources) {
    apply(list, std::span<const Lane<Vmm>>(&lane, 1), sources);
  }

  // Emits the constant table; call once after the code that uses constant().
  void emit_table();

 private:
  // x = act(x) for every lane, each instruction emitted for every lane before the next: GELU
  // and SiLU are chains of ~40 dependent instructions, and interleaving independent chains lets
  // the core overlap them instead of waiting on each one's latency. t0..t2 are clobbered.
  template <typename Vmm>
  void activation(Activation act, std::span<const Lane<Vmm>> lanes);

  // v = v + src or v * src (operand add or multiply; nothing for none). src a register or a full
  // vector in memory.
  template <typename Vmm>
  void combine(Operand operand, const Vmm& v, const Xbyak::Operand& src) {
    if (operand == Operand::add)
      gen_.vaddps(v, v, src);
    else if (operand == Operand::multiply)
      gen_.vmulps(v, v, src);
  }

  // v = int32(round_half_even(clamp(v * inv, -128, 127))), as sparse::requantize, before the
  // store narrows it to int8. qmax, qmin: kQuantMax, kQuantMin in registers or from constant().
  template <typename Vmm>
  void requantize(const Vmm& v, const Xbyak::Operand& inv, const Xbyak::Operand& qmax,
                  const Xbyak::Operand& qmin) {
    // Round to nearest even (MXCSR's default) after clamping.
    gen_.vmulps(v, v, inv);
    gen_.vminps(v, v, qmax);
    gen_.vmaxps(v, v, qmin);
    gen_.vcvtps2dq(v, v);
  }

  // t = v rounded to bf16 as sparse::to_bf16 (nearest even, in integer arithmetic so that
  // denormals are kept where vcvtneps2bf16 would flush them; a NaN keeps its top bits and
  // becomes quiet), one value in the low half of each 32-bit lane. zmm: `nan` is clobbered;
  // ymm: `scratch` and v are.
  void round_to_bf16(const Xbyak::Zmm& t, const Xbyak::Zmm& v, const Xbyak::Opmask& nan);
  void round_to_bf16(const Xbyak::Ymm& t, const Xbyak::Ymm& v, const Xbyak::Ymm& scratch);

  // x = exp(x) for x in [-87, 87] (clamped), relative error below 2e-7, per lane, with the
  // lane's n and p (t registers) clobbered.
  template <typename Vmm>
  void round_bits_to_bf16(const Vmm& t, const Vmm& v);

  template <typename Vmm>
  void exp(std::span<const Lane<Vmm>> lanes, Vmm Lane<Vmm>::*x, Vmm Lane<Vmm>::*n,
           Vmm Lane<Vmm>::*p);

  template <typename Vmm>
  void store(TileOutput output, const Lane<Vmm>& lane, int index,
             const PostOpSources<Vmm>& sources);

  Xbyak::CodeGenerator& gen_;
  Xbyak::Label table_;
};

}  // namespace sparq::jit
