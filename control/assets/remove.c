/*
 * control/assets/remove.c — weir_assets_remove (see assets.h): kept apart
 * from assets.c, which knows only folders, because this one also knows
 * the uploads' rows and the events.
 */
#include "control/assets/assets.h"
#include "control/events/events.h"
#include "control/uploads/uploads.h"

#include <string.h>

#include <libavutil/error.h>

int weir_assets_remove(const char *vod_dir, const char *id, struct weir_uploads *uploads,
                       struct weir_events *events)
{
    json_t *o = NULL;
    int r = 0;

    if (weir_assets_get(vod_dir, id, &o) < 0)
        return AVERROR(ENOENT);
    if (uploads) {
        const char *source = json_string_value(json_object_get(o, "source"));
        if (source && strcmp(source, "upload") == 0)
            r = weir_uploads_forget(uploads, id);
    }
    json_decref(o);
    if (r >= 0)
        r = weir_assets_delete(vod_dir, id);
    if (r < 0)
        return r;
    json_t *gone = json_pack("{ss}", "id", id);
    weir_events_emit(events, "asset.deleted", gone);
    json_decref(gone);
    return 0;
}
