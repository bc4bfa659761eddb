/* lsh_output.h -- the `--lsh-output K,L[,topk]` option of `pillar run` and `pillar
 * bench` (pillar_options_set_lsh_output), and the recall of its top-k against the exact
 * scores of the same model. */
#ifndef PILLAR_CLI_LSH_OUTPUT_H
#define PILLAR_CLI_LSH_OUTPUT_H

#include "cli.h"

#define CLI_LSH_OUTPUT_HELP                                                                    \
    "  --lsh-output K,L[,TOPK]  score only the neurons an LSH index (K bits, L tables)\n"      \
    "                      retrieves in the last layer (a Gemm/MatMul of >= 10,000\n"          \
    "                      outputs); its output becomes <name>_topk_scores and\n"              \
    "                      <name>_topk_labels [..., TOPK] (default TOPK 5)\n"

typedef struct cli_lsh_output {
    int K, L, topk; /* K 0: not given */
} cli_lsh_output;

/* Parses "K,L[,TOPK]"; prints a usage error for `cmd` and returns CLI_USAGE if bad. */
int cli_lsh_output_parse(const char *cmd, const char *text, cli_lsh_output *o);
/* Sets it on the options (no-op when not given); returns an exit code. */
int cli_lsh_output_apply(const cli_lsh_output *o, pillar_options *opt);

/* Recall of the approximate session's top-k (outputs "<name>_topk_labels") against the
 * exact top-k of the same output of the exact session, on the same inputs: recall@1
 * (the exact best label is the approximate best) and recall@k (share of the exact top
 * k found), averaged over rows. Prints one line; returns an exit code. */
int cli_lsh_recall(pillar_session *approx, pillar_session *exact, size_t nin, const char **names,
                   pillar_tensor *const *ins);

#endif
