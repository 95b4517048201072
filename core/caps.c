/*
 * caps.c - plugin capabilities: the defaults an old plugin gets, the loader's check of a new
 * plugin's caps, and whether two stages fit in one pipeline (what the compiler asks before it
 * accepts a task whose stages are plugins it knows nothing else about).
 */
#include "sluice/runtime.h"

#include <stdio.h>
#include <string.h>

void sl_plugin_caps_of(const sl_plugin_descriptor *d, sl_plugin_caps *out)
{
    if (SL_DESCRIPTOR_HAS(d, caps) && d->caps) {
        /* A future, larger caps struct is read up to what this host knows; the loader checked
         * that it is at least as large as ours. */
        memcpy(out, d->caps, sizeof *out);
        out->struct_size = sizeof *out;
        return;
    }
    /* Defaults: what every plugin written before 1.2 was assumed to do. A source gives
     * everything, a transform forwards everything in order, a sink takes everything and its
     * checkpoint may repeat events after a crash (the weaker promise is the safe one). */
    *out = (sl_plugin_caps){
        .struct_size = sizeof *out,
        .takes = d->kind == SL_PLUGIN_SOURCE ? 0 : SL_CAP_EV_ALL,
        .gives = d->kind == SL_PLUGIN_SINK ? 0 : SL_CAP_EV_ALL,
        .needs_images = 0,
        .gives_images = d->kind == SL_PLUGIN_SINK ? 0 : SL_CAP_IMG_ALL,
        .order = SL_CAP_ORDER_KEEPS,
        .delivery = d->kind == SL_PLUGIN_SINK ? SL_CAP_AT_LEAST_ONCE : 0,
    };
}

int sl_plugin_caps_check(const sl_plugin_descriptor *d, char *msg, size_t msgsz)
{
    if (!SL_DESCRIPTOR_HAS(d, caps) || !d->caps)
        return 0;
    const sl_plugin_caps *c = d->caps;
    if (c->struct_size < sizeof *c) {
        snprintf(msg, msgsz, "caps is %u bytes, shorter than %zu", (unsigned)c->struct_size,
                 sizeof *c);
        return SL_EABI;
    }
    const struct { const char *name; uint32_t v, known; } f[] = {
        { "takes", c->takes, SL_CAP_EV_ALL },
        { "gives", c->gives, SL_CAP_EV_ALL },
        { "needs_images", c->needs_images, SL_CAP_IMG_ALL },
        { "gives_images", c->gives_images, SL_CAP_IMG_ALL },
        { "order", c->order, SL_CAP_ORDER_KEEPS | SL_CAP_ORDER_NEEDS },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v & ~f[i].known) {
            snprintf(msg, msgsz, "caps.%s has unknown bits 0x%x", f[i].name,
                     (unsigned)(f[i].v & ~f[i].known));
            return SL_EABI;
        }
    if (d->kind == SL_PLUGIN_SINK) {
        if (c->delivery != SL_CAP_AT_LEAST_ONCE && c->delivery != SL_CAP_EXACTLY_ONCE) {
            snprintf(msg, msgsz, "caps.delivery of a sink must be at-least-once (%u) or "
                     "exactly-once (%u), not %u", SL_CAP_AT_LEAST_ONCE, SL_CAP_EXACTLY_ONCE,
                     (unsigned)c->delivery);
            return SL_EABI;
        }
    } else if (c->delivery) {
        snprintf(msg, msgsz, "caps.delivery is for sinks; this plugin is not one");
        return SL_EABI;
    }
    if (d->kind == SL_PLUGIN_SOURCE && c->takes) {
        snprintf(msg, msgsz, "caps.takes is for transforms and sinks; a source takes nothing");
        return SL_EABI;
    }
    if (d->kind == SL_PLUGIN_SINK && c->gives) {
        snprintf(msg, msgsz, "caps.gives is for sources and transforms; a sink gives nothing");
        return SL_EABI;
    }
    return 0;
}

/* Names the event kinds of a bit set ("insert, ddl") into buf. */
static const char *kinds_text(uint32_t bits, char *buf, size_t n)
{
    static const char *const names[] = { NULL, "insert", "update", "delete", "ddl", "begin",
                                         "commit", "heartbeat", "chunk" };
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned k = 1; k < sizeof names / sizeof names[0]; k++)
        if (bits & SL_CAP_EV(k)) {
            int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", names[k]);
            if (w < 0 || (size_t)w >= n - len)
                break;
            len += (size_t)w;
        }
    return buf;
}

/* Names the first row-image promise of a bit set, the strongest first. */
static const char *images_text(uint32_t bits)
{
    if (bits & SL_CAP_IMG_BEFORE)
        return "full before images";
    if (bits & SL_CAP_IMG_AFTER)
        return "full after images";
    return "the key columns in before images";
}

int sl_plugin_caps_fit(const sl_plugin_caps *up, const char *up_name,
                       const sl_plugin_caps *down, const char *down_name,
                       char *msg, size_t msgsz)
{
    /* Event kinds: a stage that takes none of what arrives would sit idle; the data would
     * pass it by and reach no one who wanted it. Only row changes and chunks are data (txn
     * markers, DDL and heartbeats are for whoever takes them). */
    uint32_t data = SL_CAP_EV_ROWS | SL_CAP_EV(SL_EV_CHUNK);
    uint32_t arriving = up->gives & data;
    if (arriving && !(down->takes & arriving)) {
        char a[128], t[128];
        snprintf(msg, msgsz, "%s takes %s, but %s gives %s", down_name,
                 down->takes ? kinds_text(down->takes, t, sizeof t) : "no events", up_name,
                 kinds_text(arriving, a, sizeof a));
        return SL_EINVAL;
    }
    uint32_t missing = down->needs_images & ~up->gives_images;
    if (missing) {
        /* Say what up gives of the image that is missing (before or after). */
        const char *given =
            (missing & (SL_CAP_IMG_KEY | SL_CAP_IMG_BEFORE))
                ? ((up->gives_images & SL_CAP_IMG_BEFORE) ? "full before images"
                   : (up->gives_images & SL_CAP_IMG_KEY) ? "only the key columns in before images"
                   : "no before images")
                : "after images without every column";
        snprintf(msg, msgsz, "%s needs %s, but %s gives %s", down_name, images_text(missing),
                 up_name, given);
        return SL_EINVAL;
    }
    if ((down->order & SL_CAP_ORDER_NEEDS) && !(up->order & SL_CAP_ORDER_KEEPS)) {
        snprintf(msg, msgsz, "%s needs events in source order, but %s does not keep order",
                 down_name, up_name);
        return SL_EINVAL;
    }
    return 0;
}

void sl_plugin_caps_chain(sl_plugin_caps *acc, const sl_plugin_caps *next)
{
    /* A transform sees what it takes; what it does not take passes it by unchanged. */
    acc->gives = (acc->gives & ~next->takes) | next->gives;
    /* Images only narrow along a pipeline: a transform cannot give back columns its source
     * never read (one that fills images from elsewhere would need its own source). */
    acc->gives_images &= next->gives_images;
    if (!(next->order & SL_CAP_ORDER_KEEPS))
        acc->order &= ~SL_CAP_ORDER_KEEPS;
}
