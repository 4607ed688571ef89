/* libvirt's domain XML read with libxml2's XPath, never by string search:
 * a path or name may hold any character, entities included. */
#include "hub/channel_xml.h"

#include <errno.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

int gd_channel_xml_path(const char *xml, size_t len, char *path, size_t pathlen)
{
    static const char expr[] = "/domain/devices/channel[@type='unix']"
                               "[target[@type='virtio'][@name='" GD_GUESTD_CHANNEL "']]"
                               "/source/@path";
    int rc = -ENOENT;

    if (len > (size_t)INT32_MAX) return -EINVAL;
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) return -EINVAL;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr res = ctx ? xmlXPathEvalExpression((const xmlChar *)expr, ctx) : NULL;
    if (res != NULL && res->nodesetval != NULL && res->nodesetval->nodeNr > 0) {
        xmlChar *value = xmlNodeGetContent(res->nodesetval->nodeTab[0]);
        if (value != NULL) {
            size_t n = strlen((const char *)value);
            if (n == 0)
                rc = -ENOENT;
            else if (n >= pathlen)
                rc = -ENAMETOOLONG;
            else {
                memcpy(path, value, n + 1);
                rc = 0;
            }
            xmlFree(value);
        }
    }
    xmlXPathFreeObject(res);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return rc;
}
