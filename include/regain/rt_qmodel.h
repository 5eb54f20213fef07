/* regain — from a lowered int8 model (regain/quant_model.h) to the
 * runtime's model (regain/rt.h). The one place the runtime reads rg_qmodel.
 *
 *     rg_rgm *r;
 *     rg_rgm_from_qmodel(qm, mean, std, &r, &err);   // borrows qm's arrays
 *     rg_rgm_write(r, "model.rgm", &err);
 *     rg_rgm_free(r);                                 // before rg_qmodel_free(qm)
 */
#ifndef REGAIN_RT_QMODEL_H
#define REGAIN_RT_QMODEL_H

#include "regain/data.h"
#include "regain/quant_model.h"
#include "regain/rt.h"
#include "regain/trainer.h"

/* Builds *out from q (its weight and parameter arrays borrowed: q must
 * outlive *out) with the input normalization (mean, std), and checks it
 * (rg_rgm_check). Errors: RG_ERR_UNSUPPORTED for an op kind the runtime
 * does not know, RG_ERR_FORMAT from the check, RG_ERR_NOMEM. */
rg_status rg_rgm_from_qmodel(const rg_qmodel *q, float mean, float std, rg_rgm **out, rg_error *err);

/* rg_rgm_from_qmodel then rg_rgm_write. */
rg_status rg_rgm_write_qmodel(const rg_qmodel *q, float mean, float std, const char *path, rg_error *err);

/* rg_qmodel_evaluate (regain/ptq.h: same results, images normalized with
 * mean and std) through the runtime, on all OpenMP threads: the same bits
 * as the integer reference, about a hundred times faster. A model with an
 * op the runtime lacks is evaluated by the reference. */
rg_status rg_qmodel_evaluate_rt(const rg_qmodel *m, const rg_dataset *ds, float mean, float std,
                                void (*progress)(void *user, int32_t done, int32_t total), void *user,
                                rg_eval_result *r, rg_error *err);

#endif
