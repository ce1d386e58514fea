// CPU feature detection and the ISA dispatch level: internal consistency, agreement with the
// kernel's view of the CPU (/proc/cpuinfo), and the names. The SPARQ_MAX_ISA cap is read once per
// process, so it is tested by the isa_cap_* CTests that run isa_cap_probe with it set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "jit/cpu_features.hpp"
#include "jit/cpu_tuning.hpp"
#include "jit/f32_block_kernel.hpp"
#include "sparq/sparq.hpp"

namespace sparq {
namespace {

using jit::Isa;

constexpr Isa kAllIsas[] = {Isa::reference, Isa::avx2, Isa::avx512, Isa::avx512_vnni};

// The "flags" line of the first processor in /proc/cpuinfo, or nothing where there is none.
std::optional<std::set<std::string>> proc_cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream words(line.substr(colon + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return std::nullopt;
}

TEST(CpuFeatures, ImplicationsHold) {
  const jit::CpuFeatures& f = jit::cpu_features();
  EXPECT_TRUE(!f.avx512_vnni || f.avx512f) << "avx512_vnni without avx512f";
  EXPECT_TRUE(!f.avx512bw || f.avx512f) << "avx512bw without avx512f";
  EXPECT_TRUE(!f.avx512vl || f.avx512f) << "avx512vl without avx512f";
  EXPECT_TRUE(!f.avx512_bf16 || f.avx512f) << "avx512_bf16 without avx512f";
  EXPECT_TRUE(!f.amx_int8 || f.amx_tile) << "amx_int8 without amx_tile";
  EXPECT_TRUE(!f.amx_bf16 || f.amx_tile) << "amx_bf16 without amx_tile";
  EXPECT_TRUE(!f.avx512f || f.avx2) << "avx512f without avx2";
}

TEST(CpuFeatures, AgreeWithProcCpuinfo) {
  const auto flags = proc_cpuinfo_flags();
  if (!flags) GTEST_SKIP() << "no flags line in /proc/cpuinfo";
  // Linux lists a flag only when the CPU has it and the kernel enabled its register state, which
  // is what CPUID + XGETBV report too.
  const auto has = [&](const char* flag) { return flags->count(flag) == 1; };
  const jit::CpuFeatures& f = jit::cpu_features();
  EXPECT_EQ(f.avx2, has("avx2"));
  EXPECT_EQ(f.fma, has("fma"));
  EXPECT_EQ(f.avx512f, has("avx512f"));
  EXPECT_EQ(f.avx512bw, has("avx512bw"));
  EXPECT_EQ(f.avx512vl, has("avx512vl"));
  EXPECT_EQ(f.avx512_vnni, has("avx512_vnni"));
  // CPUID leaf 7 subleaf 1 (the bf16 kernels dispatch on avx512_bf16).
  EXPECT_EQ(f.avx512_bf16, has("avx512_bf16"));
  EXPECT_EQ(f.avx_vnni, has("avx_vnni"));
  EXPECT_EQ(f.avx512_vbmi, has("avx512vbmi"));
  EXPECT_EQ(f.avx512_vbmi2, has("avx512_vbmi2"));
  // AMX counts only once Linux granted the tile data permission, which it may refuse.
  EXPECT_TRUE(!f.amx_tile || has("amx_tile"));
  EXPECT_TRUE(!f.amx_int8 || has("amx_int8"));
  EXPECT_TRUE(!f.amx_bf16 || has("amx_bf16"));
}

// The level each family dispatches to is the highest its features allow, lowered by
// SPARQ_MAX_ISA when it is set (the isa_cap_* CTests run with it set). int8 has no avx512 level
// (its AVX-512 kernels need VNNI), the float kernels no avx512_vnni one (they need no VNNI).
TEST(IsaLevels, BestIsasAreTheDetectedLevelsCapped) {
  const jit::CpuFeatures& f = jit::cpu_features();
  const bool avx2 = f.avx2 && f.fma, avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl;
  Isa cap = Isa::avx512_vnni;
  if (const char* env = std::getenv("SPARQ_MAX_ISA"); env && *env) {
    bool known = false;
    for (Isa isa : kAllIsas)
      if (std::string(env) == jit::isa_name(isa)) {
        known = true;
        cap = isa;
      }
    if (!known) GTEST_SKIP() << "SPARQ_MAX_ISA=" << env << " is not a level";
  }
  Isa int8 = Isa::reference, floating = Isa::reference;
  if (avx2 && cap >= Isa::avx2) int8 = floating = Isa::avx2;
  if (avx512 && cap >= Isa::avx512) floating = Isa::avx512;
  if (avx512 && f.avx512_vnni && cap >= Isa::avx512_vnni) int8 = Isa::avx512_vnni;
  EXPECT_EQ(std::string(jit::isa_name(jit::best_int8_isa())), jit::isa_name(int8));
  EXPECT_EQ(std::string(jit::isa_name(jit::best_float_isa())), jit::isa_name(floating));
}

// sparq's own AMX code runs unless SPARQ_MAX_ISA names a level below amx.
TEST(IsaLevels, AmxAllowedUnlessCappedBelowIt) {
  const char* env = std::getenv("SPARQ_MAX_ISA");
  const bool uncapped = env == nullptr || *env == 0 || std::string(env) == "amx";
  EXPECT_EQ(jit::amx_allowed(), uncapped) << (env ? env : "(unset)");
}

TEST(IsaLevels, AvailabilityFollowsFeatures) {
  const jit::CpuFeatures& f = jit::cpu_features();
  const bool avx2 = f.avx2 && f.fma, avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl;
  EXPECT_TRUE(jit::isa_available(Isa::reference));
  EXPECT_EQ(jit::isa_available(Isa::avx2), avx2);
  EXPECT_EQ(jit::isa_available(Isa::avx512), avx512);
  EXPECT_EQ(jit::isa_available(Isa::avx512_vnni), avx512 && f.avx512_vnni);
  // Levels are ordered: a level is available only when every lower one is.
  for (Isa lower : kAllIsas)
    for (Isa higher : kAllIsas)
      if (lower < higher && jit::isa_available(higher)) {
        EXPECT_TRUE(jit::isa_available(lower))
            << jit::isa_name(higher) << " available but " << jit::isa_name(lower) << " not";
      }
}

TEST(IsaLevels, BestInt8IsaIsAvailable) {
  const Isa best = jit::best_int8_isa();
  EXPECT_TRUE(jit::isa_available(best)) << jit::isa_name(best);
  const char* cap = std::getenv("SPARQ_MAX_ISA");
  if (cap && *cap) GTEST_SKIP() << "SPARQ_MAX_ISA=" << cap << " caps the level";
  // Uncapped: the highest int8 level this CPU has (avx512 is a float level only).
  for (Isa isa : kAllIsas)
    if (jit::isa_available(isa) && isa != Isa::avx512) {
      EXPECT_GE(best, isa) << jit::isa_name(isa) << " is available";
    }
}

// cpu_isa_name() names both families' levels: one name where they agree (avx512_vnni implies
// the float kernels on avx512), both where they differ.
TEST(IsaLevels, CpuIsaNameNamesWhatEachFamilyRunsOn) {
  const std::string int8 = jit::isa_name(jit::best_int8_isa());
  const std::string flt = jit::isa_name(jit::best_float_isa());
  const std::string name = cpu_isa_name();
  if (jit::best_int8_isa() == Isa::avx512_vnni) {
    EXPECT_EQ(name, int8);
    EXPECT_EQ(flt, "avx512");
  } else if (int8 == flt) {
    EXPECT_EQ(name, int8);
  } else {
    EXPECT_EQ(name, "int8 " + int8 + ", float " + flt);
  }
}

TEST(CpuFeatures, NamesListEveryDetectedFeature) {
  const jit::CpuFeatures& f = jit::cpu_features();
  const std::string names = cpu_features_name();
  std::set<std::string> listed;
  std::istringstream words(names);
  for (std::string w; words >> w;) listed.insert(w);
  if (!f.avx2) {
    EXPECT_EQ(names, "none");
    return;
  }
  EXPECT_EQ(listed.count("avx2"), 1u) << names;
  EXPECT_EQ(listed.count("avx512f") == 1, f.avx512f) << names;
  EXPECT_EQ(listed.count("avx512_vnni") == 1, f.avx512_vnni) << names;
  EXPECT_EQ(listed.count("avx512_bf16") == 1, f.avx512_bf16) << names;
  EXPECT_EQ(listed.count("amx_tile") == 1, f.amx_tile) << names;
}

TEST(CpuFeatures, CoversAndLevelsAgree) {
  for (Isa isa : kAllIsas) {
    EXPECT_EQ(jit::cpu_features().covers(jit::features_of(isa)), jit::isa_available(isa))
        << jit::isa_name(isa);
    EXPECT_TRUE(jit::features_of(Isa::avx512_vnni).covers(jit::features_of(isa)));
  }
  EXPECT_FALSE(jit::features_of(Isa::avx2).covers(jit::features_of(Isa::avx512)));
  EXPECT_FALSE(jit::features_of(Isa::avx512).covers(jit::bf16_features()));
  EXPECT_EQ(jit::features_of(Isa::avx512_vnni).names(),
            "avx2 fma avx512f avx512bw avx512vl avx512_vnni");
  EXPECT_EQ(jit::vbmi_features().names(),
            "avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512vbmi");
  EXPECT_FALSE(jit::features_of(Isa::avx512_vnni).covers(jit::vbmi_features()));
  EXPECT_EQ(jit::vbmi2_features().names(),
            "avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_vbmi2");
  EXPECT_FALSE(jit::vbmi_features().covers(jit::vbmi2_features()));
}

TEST(IsaLevels, NamesRoundTrip) {
  EXPECT_STREQ(jit::isa_name(Isa::reference), "reference");
  EXPECT_STREQ(jit::isa_name(Isa::avx2), "avx2");
  EXPECT_STREQ(jit::isa_name(Isa::avx512), "avx512");
  EXPECT_STREQ(jit::isa_name(Isa::avx512_vnni), "avx512_vnni");
  EXPECT_STREQ(jit::isa_name(static_cast<Isa>(7)), "unknown");
  std::set<std::string> names;
  for (Isa isa : kAllIsas) names.insert(jit::isa_name(isa));
  EXPECT_EQ(names.size(), std::size(kAllIsas)) << "two levels share a name";
}

TEST(CpuTuning, OneTokenDecodePrefetchByFamilyAndOverride) {
  EXPECT_TRUE(jit::tuning_for("GenuineIntel", 6, nullptr).one_token_decode_prefetch);
  EXPECT_FALSE(jit::tuning_for("AuthenticAMD", 0x19, nullptr).one_token_decode_prefetch);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x1a, nullptr).one_token_decode_prefetch);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x17, "").one_token_decode_prefetch);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x19, "1").one_token_decode_prefetch);
  EXPECT_FALSE(jit::tuning_for("GenuineIntel", 6, "0").one_token_decode_prefetch);
  EXPECT_THROW(jit::tuning_for("GenuineIntel", 6, "yes"), InvalidArgument);
  for (int tokens = 2; tokens <= 4; ++tokens) EXPECT_TRUE(jit::decode_prefetch(tokens));
}

TEST(CpuTuning, SparseInputOn2of4From40PercentOnIntelOnly) {
  EXPECT_TRUE(jit::tuning_for("GenuineIntel", 6, nullptr).sparse_input_2of4_from_40_percent);
  EXPECT_FALSE(jit::tuning_for("AuthenticAMD", 0x19, nullptr).sparse_input_2of4_from_40_percent);
  EXPECT_FALSE(jit::tuning_for("AuthenticAMD", 0x1a, nullptr).sparse_input_2of4_from_40_percent);
}

TEST(CpuTuning, Bf16AttentionProductsExceptOnIntel) {
  EXPECT_FALSE(jit::tuning_for("GenuineIntel", 6, nullptr).bf16_attention_products);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x19, nullptr).bf16_attention_products);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x1a, nullptr).bf16_attention_products);
}

TEST(CpuTuning, Bf16TilesOnVdpbf16psUnlessTheSwitchSaysFp32) {
  EXPECT_TRUE(jit::tuning_for("GenuineIntel", 6, nullptr, nullptr).bf16_tiles_on_vdpbf16ps);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x19, nullptr, nullptr).bf16_tiles_on_vdpbf16ps);
  EXPECT_TRUE(jit::tuning_for("AuthenticAMD", 0x1a, nullptr, "").bf16_tiles_on_vdpbf16ps);
  EXPECT_TRUE(jit::tuning_for("GenuineIntel", 6, nullptr, "vdpbf16ps").bf16_tiles_on_vdpbf16ps);
  EXPECT_FALSE(jit::tuning_for("GenuineIntel", 6, nullptr, "fp32").bf16_tiles_on_vdpbf16ps);
  EXPECT_THROW(jit::tuning_for("AuthenticAMD", 0x19, nullptr, "bf16"), InvalidArgument);
  // The layers follow it: bf16 4x1 tiles on vdpbf16ps only where both the CPU and the tuning
  // allow.
  EXPECT_EQ(jit::bf16_tiles_on_vdpbf16ps(),
            jit::native_bf16_available() && jit::cpu_tuning().bf16_tiles_on_vdpbf16ps);
  EXPECT_EQ(jit::decode_prefetch(1), jit::cpu_tuning().one_token_decode_prefetch);
}

}  // namespace
}  // namespace sparq
