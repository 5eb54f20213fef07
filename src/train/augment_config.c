/* The trainer's augmentation keys (crop_pad, hflip, augment, erasing, mixup,
 * cutmix) turned into the loader's configurations. Kept out of config.c so
 * the key table stays one concern. */
#include <string.h>

#include "regain/trainer.h"

rg_status rg_train_augment_config(const rg_train_config *c, rg_augment_config *aug, rg_mix_config *mix,
                                  rg_error *err)
{
    memset(aug, 0, sizeof *aug);
    memset(mix, 0, sizeof *mix);
    aug->crop_pad = c->crop_pad;
    aug->hflip = c->hflip;
    if (rg_augment_parse(c->augment, aug, err) != RG_OK) return RG_ERR_ARG;
    if (c->erasing > 0.0f) {
        if (aug->erase_p > 0.0f)
            return rg_fail(err, RG_ERR_ARG, "erasing: random erasing is also in augment ('%s'); give it once",
                           c->augment);
        /* torchvision RandomErasing's defaults */
        rg_augment_config e = *aug;
        if (rg_augment_parse("erasing", &e, err) != RG_OK) return RG_ERR_ARG;
        e.erase_p = c->erasing;
        if (rg_augment_validate(&e, err) != RG_OK) return rg_error_prefix(err, "erasing");
        *aug = e;
    }
    mix->mixup_alpha = c->mixup;
    mix->cutmix_alpha = c->cutmix;
    return rg_mix_validate(mix, err);
}
