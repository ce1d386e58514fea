// sparq-prune: magnitude pruning of a Hugging Face folder: BERT-family encoders (every encoder
// linear) and Llama-family decoders (every attention and MLP projection; embeddings and the head
// stay dense).
//
//   sparq-prune --model DIR --out DIR --pattern 4x1|2:4|unstructured|RxC --sparsity 0.9
//               [--layers REGEX]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "models/prune_folder.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sparq-prune: magnitude-prune a Hugging Face model folder"};
  std::string model, out, pattern = "4x1", layers;
  double sparsity = 0.9;
  app.add_option("--model", model, "input folder (config.json + safetensors)")->required();
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--pattern", pattern, "4x1 | 2:4 | unstructured | RxC")->capture_default_str();
  app.add_option("--sparsity", sparsity, "fraction to prune (N:M patterns: their own)")
      ->capture_default_str();
  app.add_option("--layers", layers,
                 "regex of the tensor names to prune (default: every encoder linear weight, or "
                 "every attention and MLP projection of a Llama folder)");
  CLI11_PARSE(app, argc, argv);
  try {
    const sparq::Pattern p =
        pattern == "unstructured" ? sparq::Pattern::dense() : sparq::Pattern::parse(pattern);
    if (layers.empty()) layers = sparq::models::default_prune_regex(model);
    const auto report = sparq::models::prune_folder(model, out, p, sparsity, layers);
    if (report.empty()) {
      std::cerr << "sparq-prune: no tensor matches --layers '" << layers << "'\n";
      return 1;
    }
    double zeros = 0, total = 0;
    for (const auto& t : report) {
      std::printf("%-60s %6lld x %-6lld sparsity %.3f", t.name.c_str(),
                  static_cast<long long>(t.rows), static_cast<long long>(t.cols), t.sparsity);
      if (p.kind == sparq::Pattern::Kind::block)
        std::printf("  %s blocks zero %.3f", pattern.c_str(), t.block_sparsity);
      std::printf("\n");
      zeros += t.sparsity * double(t.rows * t.cols);
      total += double(t.rows * t.cols);
    }
    std::printf("%zu tensors pruned to %s, overall sparsity %.3f -> %s\n", report.size(),
                pattern.c_str(), zeros / total, out.c_str());
  } catch (const std::exception& e) {
    std::cerr << "sparq-prune: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
